import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CloudEvent, createEvent, GATEWAY_REQUEST_COMPLETED } from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import { classifyDbError } from '@flowloom/store';
import { afterEach, describe, expect, it } from 'vitest';
import type { Outbox } from '../ports/outbox.js';
import { FallbackOutbox, type OutboxOnDatabaseDown } from './fallback-outbox.js';

/** What the store throws when PostgreSQL refuses connections. */
const refused = (): unknown =>
  classifyDbError(Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' }));

/** A database outbox that can be switched off, recording what it stored. */
class SwitchableDatabase implements Outbox {
  up = true;
  /** How long each append takes (a busy database). */
  delayMs = 0;
  readonly stored: CloudEvent[] = [];

  async append(events: readonly CloudEvent[]): Promise<void> {
    if (!this.up) throw refused();
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    for (const e of events) if (!this.stored.some((s) => s.id === e.id)) this.stored.push(e);
  }
}

const event = (n: number): CloudEvent => createEvent(GATEWAY_REQUEST_COMPLETED, 'test', { n }, 'key/k');

const dirs: string[] = [];
const opened: FallbackOutbox[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(
  database: SwitchableDatabase,
  mode: OutboxOnDatabaseDown,
  dir?: string,
  onClose?: (message: string, left: number) => void,
) {
  const spoolDir = dir ?? mkdtempSync(join(tmpdir(), 'flowloom-spool-'));
  if (!dir) dirs.push(spoolDir);
  const outbox = await FallbackOutbox.open(database, {
    mode,
    spoolDir,
    fsync: 'never',
    probeMs: 20,
    drainOnCloseMs: 300,
    ...(onClose ? { onClose } : {}),
    probe: async () => {
      if (!database.up) throw refused();
    },
  });
  outbox.start();
  opened.push(outbox);
  return { outbox, spoolDir };
}

async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('FallbackOutbox', () => {
  it('when the database is down in spool mode, then appends succeed, are reported, and reach the database in order once it is back', async () => {
    const database = new SwitchableDatabase();
    const { outbox } = await open(database, 'spool');
    await outbox.append([event(1)]);
    database.up = false;
    await outbox.append([event(2)]);
    await outbox.append([event(3)]);
    expect(outbox.status()).toMatch(
      /^degraded: database unreachable \(connection refused\); spooling events locally \(2 waiting\)$/,
    );
    expect(() => outbox.ensureWritable()).not.toThrow();
    database.up = true;
    await outbox.append([event(4)]);
    await eventually(() => database.stored.length === 4);
    expect(database.stored.map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3, 4]);
    await eventually(() => outbox.status() === 'ok');
  });

  it('when the database is back under steady traffic and each write takes longer than the gap between requests, then the spool still empties and appends go to the database again, in order', async () => {
    const database = new SwitchableDatabase();
    const { outbox } = await open(database, 'spool');
    database.up = false;
    let n = 0;
    for (; n < 20; n++) await outbox.append([event(n)]);
    database.delayMs = 40;
    database.up = true;
    // A request every 5 ms while the spool drains: appended behind it, each 40 ms round of the relay
    // would find new events and the spool would never empty.
    const appends: Promise<void>[] = [];
    let emptied = false;
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      appends.push(outbox.append([event(n++)]));
      if (outbox.status() === 'ok') emptied = true;
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(appends);
    expect(emptied).toBe(true);
    await eventually(() => database.stored.length === n);
    expect(database.stored.map((e) => (e.data as { n: number }).n)).toEqual(
      Array.from({ length: n }, (_, i) => i),
    );
  });

  it('when a gateway stops with events spooled and the database stays down, then it says so and the next one on the folder moves them into the database', async () => {
    const database = new SwitchableDatabase();
    const said: Array<[string, number]> = [];
    const first = await open(database, 'spool', undefined, (message, left) => said.push([message, left]));
    database.up = false;
    await first.outbox.append([event(1), event(2)]);
    await first.outbox.close();
    opened.splice(opened.indexOf(first.outbox), 1);
    expect(database.stored).toEqual([]);
    expect(said).toEqual([
      [
        `outbox spool: 2 events stay in ${first.spoolDir} (database unreachable at shutdown: connection refused); they move into the database when a gateway starts again on this data folder`,
        2,
      ],
    ]);
    database.up = true;
    await open(database, 'spool', first.spoolDir);
    await eventually(() => database.stored.length === 2);
  });

  it('when a gateway stops with events spooled and the database comes back meanwhile, then it moves them before it exits', async () => {
    const database = new SwitchableDatabase();
    const said: Array<[string, number]> = [];
    const { outbox } = await open(database, 'spool', undefined, (message, left) =>
      said.push([message, left]),
    );
    database.up = false;
    await outbox.append([event(1), event(2), event(3)]);
    setTimeout(() => {
      database.up = true;
    }, 100);
    await outbox.close();
    opened.splice(opened.indexOf(outbox), 1);
    expect(database.stored.map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3]);
    expect(said).toEqual([['outbox spool: moved 3 events into the database before exit', 0]]);
  });

  it('when the database is down in fail mode, then requests are refused up front with 503 and a failed append is not acknowledged', async () => {
    const database = new SwitchableDatabase();
    const { outbox } = await open(database, 'fail');
    database.up = false;
    await eventually(() => outbox.down);
    expect(() => outbox.ensureWritable()).toThrow(AppError);
    await expect(outbox.append([event(1)])).rejects.toMatchObject({ code: 'unavailable' });
    expect(outbox.status()).toMatch(/refusing requests$/);
    database.up = true;
    await eventually(() => !outbox.down);
    expect(() => outbox.ensureWritable()).not.toThrow();
  });

  it('when another running gateway owns the spool folder, then opening it fails and names the fix', async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), 'flowloom-spool-'));
    dirs.push(spoolDir);
    // The parent of this process is alive and is not this process.
    writeFileSync(join(spoolDir, 'owner'), `${hostname()} ${process.ppid}`);
    await expect(open(new SwitchableDatabase(), 'spool', spoolDir)).rejects.toThrow(
      /its own FLOWLOOM_DATA_DIR/,
    );
  });
});

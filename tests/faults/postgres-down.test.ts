import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessBus } from '@flowloom/bus';
import { loadConfig } from '@flowloom/config';
import type { CloudEvent } from '@flowloom/contracts';
import { type Gateway, startGateway } from '@flowloom/gateway';
import { openPostgres } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from '../fakes/index.js';
import { type OwnPostgres, startOwnPostgres } from './engines.js';
import { type Answer, Load } from './load.js';
import { until } from './until.js';

// PostgreSQL going away under load, on a cluster of this test's own (never the shared one):
// with `outboxOnDatabaseDown: spool` every request is still answered and every answered request's
// event reaches the outbox table exactly once after the database is back, even across a gateway
// restart during the outage; with `fail` requests are refused with 503 before any upstream call.

const ADMIN = 'flk_faults-pg-admin-0123456789abcdefghij';
const COMPLETED = 'dev.flowloom.gateway.request.completed.v1';
const MODEL = 'gpt-5.4-mini';

let pg: OwnPostgres;
let upstream: FakeProvider;
const cleanup: Array<() => Promise<void>> = [];

beforeAll(async () => {
  pg = await startOwnPostgres(`faults-pg-${randomBytes(3).toString('hex')}`);
  upstream = await startFakeProvider({ kind: 'openai', apiKey: 'sk-fake-faults' });
}, 120_000);

afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
  await upstream?.close();
  await pg?.purge();
}, 60_000);

interface Running {
  gateway: Gateway;
  published: CloudEvent[];
  close(): Promise<void>;
}

async function startOn(database: string, mode: 'spool' | 'fail', dataDir: string): Promise<Running> {
  const config = loadConfig({
    env: {},
    cwd: dataDir,
    overrides: {
      httpPort: 0,
      grpcPort: 0,
      logLevel: 'silent',
      dataDir,
      adminKey: ADMIN,
      databaseUrl: pg.url(database),
      outboxOnDatabaseDown: mode,
      providers: {
        openai: {
          kind: 'openai',
          baseUrl: `${upstream.url}/v1`,
          apiKey: 'sk-fake-faults',
          models: ['gpt-*'],
        },
      },
    },
  });
  const bus = new InProcessBus();
  const published: CloudEvent[] = [];
  await bus.subscribe('fault-recorder', async (event) => {
    published.push(event);
  });
  const gateway = await startGateway({ config, env: {}, bus });
  return {
    gateway,
    published,
    close: async () => {
      await gateway.close();
      await bus.close();
    },
  };
}

async function json(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return {
    status: response.status,
    body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

async function createKey(url: string): Promise<string> {
  const created = await json(`${url}/api/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'faults' }),
  });
  expect(created.status).toBe(201);
  return String(created.body.key);
}

async function checks(url: string): Promise<{ status: number; checks: Record<string, string> }> {
  const ready = await json(`${url}/readyz`);
  return { status: ready.status, checks: ready.body.checks as Record<string, string> };
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!match) throw new Error(`metric ${name} is missing from /metrics`);
  return Number(match[1]);
}

/** How many outbox rows each request id has (completed requests only). */
async function outboxRows(database: string): Promise<Map<string, number>> {
  const db = await openPostgres(pg.url(database), { max: 1 });
  try {
    const { rows } = await db.query<{ request_id: string; n: number }>(
      `select event->'data'->>'requestId' as request_id, count(*)::int as n from outbox where type = $1 group by 1`,
      [COMPLETED],
    );
    return new Map(rows.map((r) => [r.request_id, r.n]));
  } finally {
    await db.close();
  }
}

/** Answered requests whose event is missing from, or more than once in, the outbox. */
function mismatches(answered: readonly Answer[], rows: Map<string, number>): string[] {
  return answered
    .filter((a) => rows.get(a.requestId ?? '') !== 1)
    .map((a) => `${a.requestId}: ${rows.get(a.requestId ?? '') ?? 0} rows`);
}

const ask = (n: number) => ({ model: MODEL, messages: [{ role: 'user', content: `fault request ${n}` }] });

describe('when PostgreSQL goes down under load', () => {
  it('then with outboxOnDatabaseDown spool, every request is answered and every answered event reaches the outbox exactly once, across a gateway restart', async () => {
    const started = Date.now();
    const dataDir = mkdtempSync(join(tmpdir(), 'flowloom-faults-spool-'));
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    let running: Running | undefined = await startOn('flowloom', 'spool', dataDir);
    cleanup.push(async () => running?.close());
    const key = await createKey(running.gateway.httpUrl);
    const current = (): string[] => (running ? [running.gateway.httpUrl] : []);
    const load = new Load({ targets: current, key, body: ask, concurrency: 4 });
    const published: CloudEvent[] = [];
    let spooled = 0;
    let restartedFrom = { url: '', index: Number.POSITIVE_INFINITY };
    try {
      await load.waitForAnswers(30);

      // First outage: served from the spool, reported in /readyz and the metrics, drained live.
      await pg.stop();
      await load.waitForAnswers(40);
      const url = running.gateway.httpUrl;
      const during = await checks(url);
      expect(during.status).toBe(200);
      expect(during.checks.outbox).toMatch(
        /^degraded: database unreachable .*spooling events locally \(\d+ waiting\)$/,
      );
      expect(during.checks.database).toMatch(/^degraded: /);
      expect(await metric(url, 'flowloom_outbox_degraded')).toBe(1);
      expect(await metric(url, 'flowloom_outbox_spooled_events')).toBeGreaterThan(0);
      await pg.start();
      await until('the spool to drain', async () =>
        (await checks(url)).checks.outbox === 'ok' ? true : undefined,
      );
      expect(await metric(url, 'flowloom_outbox_degraded')).toBe(0);
      await load.waitForAnswers(30);

      // Second outage: the gateway is restarted while its events exist only in the local spool.
      await pg.stop();
      await load.waitForAnswers(40);
      spooled = await metric(url, 'flowloom_outbox_spooled_events');
      expect(spooled).toBeGreaterThan(0);
      const stopping = running;
      restartedFrom = { url: stopping.gateway.httpUrl, index: load.answers.length };
      running = undefined;
      await stopping.close();
      published.push(...stopping.published);
      await pg.start();
      running = await startOn('flowloom', 'spool', dataDir);
      await load.waitForAnswers(30);
    } finally {
      await load.stop();
    }
    await running.gateway.flushOutbox();
    published.push(...running.published);

    const answered = load.answered;
    const refused = load.answers.filter((a) => a.status < 200 || a.status >= 300);
    const rows = await outboxRows('flowloom');
    const publishedIds = new Set(
      published.filter((e) => e.type === COMPLETED).map((e) => (e.data as { requestId: string }).requestId),
    );
    console.log(
      `[faults] PostgreSQL down, spool: ${load.answers.length} requests, ${answered.length} answered, ${refused.length} not answered; ` +
        `${spooled} events in the spool across the gateway restart; outbox rows of answered requests: ` +
        `${answered.filter((a) => rows.get(a.requestId ?? '') === 1).length} exactly once, ${mismatches(answered, rows).length} missing or duplicated; ` +
        `${answered.filter((a) => publishedIds.has(a.requestId ?? '')).length} published to the bus; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    // Only requests caught by the gateway's own restart may go unanswered (their connection closed).
    const restartCasualty = (a: Answer): boolean =>
      a.status === 0 && a.target === restartedFrom.url && load.answers.indexOf(a) >= restartedFrom.index - 4;
    expect(refused.filter((a) => !restartCasualty(a)).map((a) => `${a.status} ${a.code}`)).toEqual([]);
    expect(mismatches(answered, rows)).toEqual([]);
    expect(answered.filter((a) => !publishedIds.has(a.requestId ?? '')).map((a) => a.requestId)).toEqual([]);
  }, 150_000);

  it('then with outboxOnDatabaseDown fail, requests are refused with 503 in the caller format before any upstream call, and every answered event is recorded', async () => {
    const started = Date.now();
    const dataDir = mkdtempSync(join(tmpdir(), 'flowloom-faults-fail-'));
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const running = await startOn('flowloom_test', 'fail', dataDir);
    cleanup.push(() => running.close());
    const url = running.gateway.httpUrl;
    const key = await createKey(url);
    const load = new Load({ targets: () => [url], key, body: ask, concurrency: 4 });
    let upstreamDuringOutage = -1;
    let refusedDuringOutage: Answer[] = [];
    try {
      await load.waitForAnswers(30);
      await pg.stop();
      const down = await until('the gateway to notice', async () => {
        const ready = await checks(url);
        return ready.checks.outbox?.endsWith('refusing requests') ? ready : undefined;
      });
      expect(down.status).toBe(503);
      expect(await metric(url, 'flowloom_outbox_degraded')).toBe(1);

      // From now on nothing may reach the provider: every request is refused up front.
      const upstreamBefore = upstream.stats.requests;
      const seenBefore = load.answers.length;
      await new Promise((r) => setTimeout(r, 2_000));
      const anthropic = await fetch(`${url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(anthropic.status).toBe(503);
      expect(await anthropic.json()).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
      refusedDuringOutage = load.answers.slice(seenBefore);
      upstreamDuringOutage = upstream.stats.requests - upstreamBefore;

      await pg.start();
      await until('the gateway to serve again', async () =>
        (await checks(url)).status === 200 ? true : undefined,
      );
      await load.waitForAnswers(30);
    } finally {
      await load.stop();
    }
    await running.gateway.flushOutbox();

    const answered = load.answered;
    const refused = load.answers.filter((a) => a.status === 503);
    const rows = await outboxRows('flowloom_test');
    console.log(
      `[faults] PostgreSQL down, fail: ${load.answers.length} requests, ${answered.length} answered, ${refused.length} refused with 503 ` +
        `(${refusedDuringOutage.length} while the outage was known, with ${upstreamDuringOutage} upstream calls); ` +
        `outbox rows of answered requests: ${answered.length - mismatches(answered, rows).length} exactly once, ` +
        `${mismatches(answered, rows).length} missing or duplicated; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    expect(refusedDuringOutage.length).toBeGreaterThan(0);
    expect(refusedDuringOutage.map((a) => `${a.status} ${a.code}`)).toEqual(
      refusedDuringOutage.map(() => '503 unavailable'),
    );
    expect(upstreamDuringOutage).toBe(0);
    expect(load.answers.filter((a) => a.status !== 200 && a.status !== 503)).toEqual([]);
    expect(mismatches(answered, rows)).toEqual([]);
  }, 120_000);
});

import { createHash } from 'node:crypto';
import { createEvent, GATEWAY_REQUEST_COMPLETED, OUTBOX_EVENT_REDRIVEN } from '@flowloom/contracts';
import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import { openTestPostgres, TEST_PG_URL, type TestDatabase } from '@flowloom/gateway/testing/databases';
import { canonicalize } from '@flowloom/ledger';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from './cli-runner.js';

// `flowloom outbox parked` against a real gateway on PostgreSQL. The row is parked by hand here, as
// the relay parks one the bus refused for good (that path runs against real Kafka in the gateway's
// outbox-parking test); the in-process bus then takes it when it is published again.

let database: TestDatabase;
let t: TestGateway;

beforeAll(async () => {
  database = await openTestPostgres();
  t = await startTestGateway({ db: database.db, overrides: { databaseUrl: TEST_PG_URL } });
});
afterAll(async () => {
  await t?.close();
  await database?.drop();
});

const flowloom = (...args: string[]) => runCli({ url: t.url, apiKey: t.adminKey }, ...args);

describe('flowloom outbox parked', () => {
  it('when an event is parked, then admins list it with its hash, members may not, and --redrive publishes it', async () => {
    const parked = createEvent(GATEWAY_REQUEST_COMPLETED, 'flowloom/gateway', { inputs: 'long' }, 'job/x');
    await database.db.query(
      `insert into outbox (id, type, subject, event, parked_at, park_reason)
       values ($1::uuid, $2, $3, $4::jsonb, now(), 'MESSAGE_TOO_LARGE: too large')`,
      [parked.id, parked.type, 'job/x', JSON.stringify(parked)],
    );
    const sha256 = createHash('sha256').update(canonicalize(parked)).digest('hex');

    const listed = await flowloom('outbox', 'parked', '--json');
    expect(listed.code, listed.err).toBe(0);
    const { total, data } = JSON.parse(listed.out) as { total: number; data: Array<Record<string, unknown>> };
    expect(total).toBe(1);
    expect(data[0]).toMatchObject({
      id: parked.id,
      type: parked.type,
      sha256,
      reason: 'MESSAGE_TOO_LARGE: too large',
    });
    expect((await flowloom('outbox', 'parked')).out).toContain(`sha256 ${sha256}`);

    const member = await t.createKey();
    expect((await t.get('/api/v1/outbox/parked', member.key)).status).toBe(403);
    expect((await t.post('/api/v1/outbox/parked/redrive', {}, member.key)).status).toBe(403);
    expect((await t.post('/api/v1/outbox/parked/redrive', { ids: ['nope'] }, t.adminKey)).status).toBe(400);
    expect((await t.get('/metrics')).text).toContain('flowloom_outbox_parked_events 1');

    const redriven = await flowloom('outbox', 'parked', '--redrive', '--id', parked.id);
    expect(redriven.code, redriven.err).toBe(0);
    expect(redriven.out).toContain('Requeued 1: published 1, parked again 0');
    // The redrive's own record goes out through the outbox after the command returns.
    const events = await vi.waitFor(
      async () => {
        const all = await t.events();
        if (!all.some((e) => e.type === OUTBOX_EVENT_REDRIVEN))
          throw new Error('the redrive is not published yet');
        return all;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(events.some((e) => e.id === parked.id)).toBe(true);
    // The trail records who published it again, and what came of it.
    expect(events.find((e) => e.type === OUTBOX_EVENT_REDRIVEN)?.data).toEqual({
      actor: expect.stringMatching(/^key\//),
      requested: [parked.id],
      requeued: 1,
      published: [parked.id],
      parkedAgain: [],
      pending: [],
    });
    expect((await flowloom('outbox', 'parked')).out).toBe("No parked events in the gateway's outbox.");
  });

  it('when asked for help or given a wrong option, then it explains the command', async () => {
    expect((await flowloom('outbox', '--help')).out).toContain('max.message.bytes');
    const wrong = await flowloom('outbox', 'parked', '--id', 'x');
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toContain('--id is for --redrive');
  });
});

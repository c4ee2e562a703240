import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import { chat, type PolicyGateway, startPolicyGateway, testPostgres } from './policy-helpers.js';
import { freePort, killRedis, startRedis } from './redis-process.js';

const GUARD = `
name: loop-guard
rules:
  - id: agent-loop
    condition: signals.repeated_prompts >= 2
    action: stop_job
    message: the job kept sending the same prompt
`;

const gateways: PolicyGateway[] = [];
const redises: ChildProcess[] = [];
let pg: TestDatabase | undefined;
afterAll(async () => {
  // The Redis first: nothing else may keep it alive after the suite (the gateways close without it).
  for (const r of redises) await killRedis(r);
  for (const g of gateways) await g.close();
  await pg?.drop();
}, 60_000);

const job = (name: string) => ({ 'x-flowloom-job': name });
const loop = chat('Run the build again and tell me whether it passes.');

async function checks(t: PolicyGateway): Promise<{ status: number; checks: Record<string, string> }> {
  const ready = await t.get('/readyz');
  return { status: ready.status, checks: (ready.body as { checks: Record<string, string> }).checks };
}

/** Sends the same prompt for `name` until it is refused; returns the statuses. */
async function loopUntilStopped(t: PolicyGateway, key: string, name: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < 6 && !statuses.includes(403); i++)
    statuses.push((await t.post('/v1/chat/completions', loop, key, job(name))).status);
  return statuses;
}

describe('when Redis is down at boot', () => {
  it('then the gateway starts, detects on local signals, reports it in /readyz and /metrics, and hands its job stops to Redis once it is back', async () => {
    const port = await freePort(); // nothing listens here yet
    const redisUrl = `redis://127.0.0.1:${port}`;
    // Two replicas share PostgreSQL (keys) and Redis (signals, job stops).
    pg = await testPostgres();
    const t = await startPolicyGateway(GUARD, { overrides: { redisUrl }, db: pg.db });
    gateways.push(t);
    const { key } = await t.createKey({ name: 'agent' });

    // /readyz finds the outage without traffic: ready (local signals serve), but says so.
    const before = await checks(t);
    expect(before.status).toBe(200);
    expect(before.checks.signals).toMatch(/^degraded: .*; using local signals$/);
    expect((await t.get('/metrics')).text).toMatch(/flowloom_signals_degraded 1/);

    // Runaway detection still works, on this replica's own signals: the 3rd identical prompt stops the job.
    expect(await loopUntilStopped(t, key, 'looper')).toEqual([200, 200, 403]);
    expect((await t.get('/api/v1/jobs/looper', t.adminKey)).body).toMatchObject({
      status: 'stopped',
      stoppedBy: { rule: 'agent-loop' },
    });

    redises.push(await startRedis(port));
    // The shared store is tried again after its back-off (5 s); /readyz drives that without traffic.
    const deadline = Date.now() + 20_000;
    let now = before;
    while (Date.now() < deadline) {
      now = await checks(t);
      if (now.checks.signals === 'ok') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(now.checks.signals).toBe('ok');
    expect((await t.get('/metrics')).text).toMatch(/flowloom_signals_degraded 0/);

    // The stop made during the outage reached Redis: a second replica, which never saw the job, refuses it.
    const other = await startPolicyGateway(GUARD, { overrides: { redisUrl }, db: pg.db });
    gateways.push(other);
    expect((await checks(other)).checks.signals).toBe('ok');
    expect((await other.get('/api/v1/jobs/looper', other.adminKey)).body).toMatchObject({
      status: 'stopped',
      stoppedBy: { rule: 'agent-loop' },
    });
    expect((await other.post('/v1/chat/completions', chat('new work'), key, job('looper'))).status).toBe(403);

    // Signals are shared again: prompts counted by one replica count on the other.
    expect((await t.post('/v1/chat/completions', loop, key, job('shared'))).status).toBe(200);
    expect((await t.post('/v1/chat/completions', loop, key, job('shared'))).status).toBe(200);
    expect((await other.post('/v1/chat/completions', loop, key, job('shared'))).status).toBe(403);
  }, 120_000);
});

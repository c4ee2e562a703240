import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, freePort } from '../bench/processes.js';
import { freshDatabase, type OwnRedis, startOwnRedis } from './engines.js';
import { Load } from './load.js';
import { Service } from './services.js';
import { until } from './until.js';

// Redis going away under a real `flowloom serve gateway` process (a Redis of this test's own, never
// the shared one): with the default fallback the process keeps answering every request on local
// limits and signals, says so in /readyz and /metrics, does not crash, returns to Redis when it is
// back, and also starts while Redis is down. The in-process component tests
// (services/gateway/test/limits-fallback and signals-fallback) cover the details and `closed`.

const ADMIN = 'flk_faults-redis-admin-0123456789abcdefghij';

let redis: OwnRedis | undefined;
let database: { url: string; drop(): Promise<void> } | undefined;
let gateway: Service | undefined;
let work = '';

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'flowloom-faults-redis-'));
  [redis, database] = await Promise.all([startOwnRedis(), freshDatabase('flowloom_faults_redis')]);
  const config = join(work, 'flowloom.yaml');
  // Limits that every request reserves and counts in Redis, none that this test reaches.
  writeFileSync(
    config,
    [
      'budgets:',
      '  - { scope: key, period: month, limitUsd: 1000000 }',
      'rateLimits:',
      '  - { scope: key, requestsPerMinute: 1000000, tokensPerMinute: 1000000000 }',
      '',
    ].join('\n'),
  );
  const [http, grpc] = [await freePort(), await freePort()];
  gateway = new Service(
    'gateway',
    'gateway',
    {
      FLOWLOOM_DATABASE_URL: database.url,
      FLOWLOOM_REDIS_URL: redis.url,
      FLOWLOOM_CONFIG: config,
      FLOWLOOM_ADMIN_KEY: ADMIN,
      FLOWLOOM_LOG_LEVEL: 'warn',
      FLOWLOOM_DATA_DIR: join(work, 'gateway'),
      FLOWLOOM_HTTP_PORT: String(http),
      FLOWLOOM_GRPC_PORT: String(grpc),
    },
    `http://127.0.0.1:${http}`,
  );
  await gateway.start();
}, 150_000);

afterAll(async () => {
  await gateway?.stop();
  await redis?.stop().catch((error: Error) => console.error(error.message));
  await database?.drop();
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

async function health(
  url: string,
): Promise<{ status: number; checks: Record<string, string>; metrics: string }> {
  const ready = await fetch(`${url}/readyz`);
  const body = (await ready.json()) as { checks: Record<string, string> };
  return { status: ready.status, checks: body.checks, metrics: await (await fetch(`${url}/metrics`)).text() };
}

describe('when Redis is unavailable to a gateway process', () => {
  it('then it keeps answering on local limits and signals, reports it, returns to Redis, and starts without it', async () => {
    const started = Date.now();
    const g = gateway!;
    const { key } = await adminCall<{ key: string }>(g.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'faults',
    });
    // A job tag: every request also updates the runaway signals (Redis) on its way.
    let restarting = false;
    const load = new Load({
      targets: () => (restarting ? [] : [g.url]),
      key,
      headers: { 'x-flowloom-job': 'faults-redis' },
      body: (n) => ({ model: 'flowloom-local', messages: [{ role: 'user', content: `request ${n}` }] }),
      concurrency: 4,
    });
    const counts: string[] = [];
    const count = (phase: string, from: number) => counts.push(`${phase} ${load.answered.length - from}`);
    try {
      await load.waitForAnswers(20);
      expect((await health(g.url)).checks).toMatchObject({ limits: 'ok', signals: 'ok' });

      let from = load.answered.length;
      await redis!.kill();
      await load.waitForAnswers(100);
      const down = await until('the gateway to report Redis down', async () => {
        const h = await health(g.url);
        return h.checks.limits?.startsWith('degraded:') && h.checks.signals?.startsWith('degraded:')
          ? h
          : undefined;
      });
      expect(down.status).toBe(200);
      expect(down.checks.limits).toMatch(/using local limits$/);
      expect(down.metrics).toMatch(/^flowloom_limits_degraded 1$/m);
      expect(down.metrics).toMatch(/^flowloom_signals_degraded 1$/m);
      count('answered with Redis down:', from);

      from = load.answered.length;
      await redis!.start();
      const back = await until('the gateway to return to Redis', async () => {
        const h = await health(g.url);
        return h.checks.limits === 'ok' && h.checks.signals === 'ok' ? h : undefined;
      });
      expect(back.metrics).toMatch(/^flowloom_limits_degraded 0$/m);
      await load.waitForAnswers(20);
      count('after it came back:', from);

      // A restart while Redis is down: the gateway starts on the fallback and serves at once.
      await redis!.kill();
      restarting = true;
      await g.stop();
      from = load.answered.length;
      await g.start();
      restarting = false;
      await load.waitForAnswers(40);
      const boot = await health(g.url);
      expect(boot.status).toBe(200);
      expect(boot.checks.limits).toMatch(/^degraded:/);
      count('after a start with Redis down:', from);
      await redis!.start();
    } finally {
      await load.stop();
    }
    const failed = load.answers.filter((a) => a.status !== 200);
    console.log(
      `[faults] Redis down: ${load.answers.length} requests to one gateway process, ${load.answered.length} answered (${counts.join(', ')}), ` +
        `${failed.length} not; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    // Only requests caught by the deliberate restart may go unanswered (connection closed).
    expect(failed.filter((a) => a.status !== 0).map((a) => `${a.status} ${a.code}`)).toEqual([]);
    expect(failed.length).toBeLessThanOrEqual(4);
    expect(g.output()).not.toMatch(/Unhandled|uncaught/i);
  }, 150_000);
});

import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startRedis } from './redis-process.js';
import { startTestGateway, type TestGateway } from './support.js';

const ask = { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] };
const gateways: TestGateway[] = [];
afterAll(async () => {
  for (const g of gateways) await g.close();
});

describe('when Redis is unavailable', () => {
  it('then the gateway keeps serving on local limits and says so in /readyz and /metrics, and recovers', async () => {
    const port = await freePort();
    let redis = await startRedis(port);
    const t = await startTestGateway({
      overrides: {
        redisUrl: `redis://127.0.0.1:${port}`,
        rateLimits: [{ scope: 'key', requestsPerMinute: 1000 }],
      },
    });
    gateways.push(t);
    const { key } = await t.createKey();
    expect((await t.post('/v1/chat/completions', ask, key)).status).toBe(200);
    expect((await t.get('/readyz')).body).toMatchObject({ status: 'ready', checks: { limits: 'ok' } });

    redis.kill('SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    const during = await t.post('/v1/chat/completions', ask, key);
    expect(during.status).toBe(200);
    const ready = await t.get('/readyz');
    expect(ready.status).toBe(200);
    expect((ready.body as { checks: { limits: string } }).checks.limits).toMatch(
      /^degraded: .*using local limits/,
    );
    expect((await t.get('/metrics')).text).toMatch(/flowloom_limits_degraded 1/);

    redis = await startRedis(port);
    try {
      // The shared store is retried after its back-off (5 s).
      const deadline = Date.now() + 20_000;
      let limits = '';
      while (Date.now() < deadline) {
        await t.post('/v1/chat/completions', ask, key);
        limits = ((await t.get('/readyz')).body as { checks: { limits: string } }).checks.limits;
        if (limits === 'ok') break;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(limits).toBe('ok');
      const metrics = (await t.get('/metrics')).text;
      expect(metrics).toMatch(/flowloom_limits_degraded 0/);
      // The rate-limit window counted locally during the outage was added to Redis.
      expect(metrics).toMatch(/flowloom_limits_handed_over_counters_total [1-9]/);
    } finally {
      redis.kill('SIGKILL');
    }
  }, 60_000);

  it('then with limitsFallback closed, requests are refused with 503 and /readyz is not ready', async () => {
    const port = await freePort();
    const redis = await startRedis(port);
    const t = await startTestGateway({
      overrides: {
        redisUrl: `redis://127.0.0.1:${port}`,
        limitsFallback: 'closed',
        rateLimits: [{ scope: 'key', requestsPerMinute: 1000 }],
      },
    });
    gateways.push(t);
    const { key } = await t.createKey();
    redis.kill('SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    const refused = await t.post('/v1/chat/completions', ask, key);
    expect(refused.status).toBe(503);
    expect((refused.body as { error: { code: string } }).error.code).toBe('unavailable');
    expect((await t.get('/readyz')).status).toBe(503);
  }, 30_000);
});

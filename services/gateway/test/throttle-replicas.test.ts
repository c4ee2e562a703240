import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import { chat, type PolicyGateway, startPolicyGateway, testPostgres } from './policy-helpers.js';

const TEST_REDIS_URL = process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const QUEUE = `
name: pacing
rules:
  - id: two-at-a-time
    condition: request.job.startsWith("paced-")
    action: { type: throttle, queue: true, concurrency: 2, maxWaitMs: 20000 }
`;

let pg: TestDatabase;
const replicas: PolicyGateway[] = [];
let key: string;

beforeAll(async () => {
  pg = await testPostgres();
  // Two gateway replicas sharing PostgreSQL (keys) and Redis (limits, signals, throttle queues).
  for (let i = 0; i < 2; i++)
    replicas.push(await startPolicyGateway(QUEUE, { overrides: { redisUrl: TEST_REDIS_URL }, db: pg.db }));
  key = (await replicas[0]!.createKey({ name: 'agent' })).key;
}, 120_000);
afterAll(async () => {
  for (const r of replicas) await r.close();
  await pg?.drop();
});

describe('a queueing throttle across gateway replicas', () => {
  it('when requests of one job arrive on both replicas at once, then at most `concurrency` run at a time in total', async () => {
    const job = `paced-${randomBytes(3).toString('hex')}`;
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        replicas[i % 2]!.post('/v1/chat/completions', chat(`step ${i}`, { delayMs: 400 }), key, {
          'x-flowloom-job': job,
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    // 6 requests, 2 at a time across both replicas: 3 rounds of 400 ms. Per replica it would be 2 rounds.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_150);
    for (const r of replicas)
      expect((await r.get('/readyz')).body).toMatchObject({ checks: { throttle: 'ok' } });
  }, 60_000);
});

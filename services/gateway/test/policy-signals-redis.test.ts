import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import { type PolicyGateway, startPolicyGateway, testPostgres } from './policy-helpers.js';

// What an answer adds to a job's signals (its cost, tokens, outcome) is recorded after the answer,
// without the caller waiting for it, on the shared Redis store. The next request must see it all the
// same: the record is sent before the answer goes out, ahead of that request's read.

const TEST_REDIS_URL = process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const GUARD = `
name: spend-guard
rules:
  - id: spend-spike
    condition: signals.spend_per_minute > 0.05
    action: block
    message: spending faster than $0.05 a minute
`;

let pg: TestDatabase;
let t: PolicyGateway;
let key: string;
beforeAll(async () => {
  pg = await testPostgres();
  t = await startPolicyGateway(GUARD, {
    overrides: {
      redisUrl: TEST_REDIS_URL,
      // $1 per 1,000 tokens: each answer below costs $0.04.
      prices: { 'flowloom-local': { input: 1000, output: 1000 } },
      routing: { maxAttempts: 1 },
      signals: { windowSeconds: 60 },
    },
    db: pg.db,
  });
  key = (await t.createKey({ name: `spend-${randomBytes(4).toString('hex')}` })).key;
});
afterAll(async () => {
  await t?.close();
  await pg?.drop();
});

const costly = {
  model: 'flowloom-local',
  max_tokens: 40,
  messages: [{ role: 'user', content: 'flowloom-local: {"reply":"ok","inputTokens":10,"outputTokens":30}' }],
};

describe('signals recorded after the answer, on Redis', () => {
  it('when each answer of a job costs $0.04, then the third request sees the first two and is blocked', async () => {
    const job = { 'x-flowloom-job': `spend-${randomBytes(4).toString('hex')}` };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await t.post('/v1/chat/completions', costly, key, job)).status);
    // $0 then $0.04 seen (allowed), then $0.08 (> $0.05): blocked at once, not a request later.
    expect(statuses).toEqual([200, 200, 403]);
    await t.gateway.policy.settled();
    const status = await t.get(`/api/v1/jobs/${job['x-flowloom-job']}`, t.adminKey);
    expect((status.body as { signals: Record<string, number> }).signals.spend_per_minute).toBeCloseTo(
      0.08,
      6,
    );
  });
});

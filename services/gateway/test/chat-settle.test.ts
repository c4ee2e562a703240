import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { budgetBuckets } from '../src/domain/budget.js';
import { gatedRedis, TEST_REDIS_URL } from './limits-outage.js';
import { startTestGateway, type TestGateway } from './support.js';

// A request's budget is settled while its event is written, not before: the answer does not wait for
// the settle, and a settle that fails once the answer is there does not fail the request.

const BUDGET = { scope: 'key' as const, period: 'total' as const, limitUsd: 10 };
const gateways: TestGateway[] = [];
const redis = new Redis(TEST_REDIS_URL.toString(), { maxRetriesPerRequest: 1 });
afterAll(async () => {
  for (const g of gateways) await g.close();
  redis.disconnect();
});

describe('settling a budget', () => {
  it.each([
    ['not streamed', false],
    ['streamed', true],
  ])(
    'when the limits store becomes unreachable while a request (%s) waits for its answer (limitsFallback closed), then the caller still gets the answer and its event, and the reservation stays counted',
    async (_, stream) => {
      const { gate, url } = await gatedRedis();
      const t = await startTestGateway({
        overrides: {
          redisUrl: url,
          limitsFallback: 'closed',
          prices: { 'flowloom-local': { input: 1000, output: 1000 } },
          budgets: [BUDGET],
        },
      });
      gateways.push(t);
      try {
        const { key, id } = await t.createKey();
        const counter = `flowloom:${budgetBuckets([BUDGET], { key: id }, new Date())[0]!.key}`;
        const answer = t.post(
          '/v1/chat/completions',
          {
            model: 'flowloom-local',
            max_tokens: 40,
            stream,
            messages: [
              {
                role: 'user',
                content: 'flowloom-local: {"reply":"late","inputTokens":10,"outputTokens":30,"delayMs":1500}',
              },
            ],
          },
          key,
        );
        // The reservation is in Redis: the request waits for its answer now.
        const deadline = Date.now() + 5_000;
        while (Number((await redis.get(counter)) ?? 0) === 0 && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        const reserved = Number((await redis.get(counter)) ?? 0);
        expect(reserved).toBeGreaterThan(40_000);
        await gate.cut();

        const res = await answer;
        expect(res.status).toBe(200);
        const requestId = res.headers.get('x-request-id');
        const events = (await t.events()).filter((e) => e.data.requestId === requestId);
        expect(events.map((e) => e.type)).toEqual(['dev.flowloom.gateway.request.completed.v1']);
        expect(events[0]!.data.costUsd).toBeCloseTo(0.04, 9);
        // Not settled to the real $0.04: the larger reservation holds the budget on the safe side.
        expect(Number(await redis.get(counter))).toBe(reserved);
      } finally {
        await gate.cut();
      }
    },
    30_000,
  );
});

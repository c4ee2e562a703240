import { randomBytes } from 'node:crypto';
import { isAppError } from '@flowloom/errors';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLimitStore } from '../src/adapters/redis-limit-store.js';
import type { RequestContext } from '../src/app/context.js';
import { Limiter } from '../src/app/limits.js';
import { type BudgetRule, budgetBuckets, type RateRule, rateBuckets } from '../src/domain/budget.js';
import type { KeyRecord } from '../src/domain/keys.js';

// The Limiter asks a request's rate windows and budgets at once (one round trip to Redis) and takes
// back what a refusal left counted: these check what stays in Redis, on the real engine.

const TEST_REDIS_URL = process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const MINUTE = 60_000;
const NOW = Date.UTC(2031, 4, 6, 12, 0, 30);
/** micro-USD per token: 10 input tokens and 40 output tokens reserve 50_000 (= $0.05). */
const PRICES = [{ input: 1_000, output: 1_000 }];
const RESERVED = 50_000;

const stores: RedisLimitStore[] = [];
let redis: Redis;
beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  for (const s of stores) await s.close();
  redis.disconnect();
});

async function replica(prefix: string): Promise<RedisLimitStore> {
  const store = await RedisLimitStore.connect(TEST_REDIS_URL, prefix);
  stores.push(store);
  return store;
}

function context(keyId: string): RequestContext {
  // The limiter reads the key's id, project and team alone.
  const key = { id: keyId, project: null, team: null } as KeyRecord;
  return {
    requestId: randomBytes(4).toString('hex'),
    api: 'openai',
    key,
    tags: {},
    signal: new AbortController().signal,
    startedAt: 0,
  };
}

/** A limiter over Redis with its own counters, and where they are. */
async function setUp(budgets: BudgetRule[], rates: RateRule[]) {
  const prefix = `test-limiter-${randomBytes(4).toString('hex')}:`;
  const keyId = `k-${randomBytes(4).toString('hex')}`;
  const store = await replica(prefix);
  const limiter = new Limiter(store, budgets, rates, { now: () => NOW });
  const budgetKey = budgetBuckets(budgets, { key: keyId }, new Date(NOW)).map((b) => `${prefix}${b.key}`);
  const windowKey = rateBuckets(rates, { key: keyId }).map(
    (b) => `${prefix}${b.key}:${Math.floor(NOW / MINUTE)}`,
  );
  const counter = async (key: string | undefined) => Number((await redis.get(key!)) ?? 0);
  return { prefix, keyId, store, limiter, budgetKey, windowKey, counter };
}

const refusalCode = async (attempt: Promise<unknown>): Promise<string | undefined> => {
  try {
    await attempt;
    return undefined;
  } catch (error) {
    if (!isAppError(error)) throw error;
    return error.code;
  }
};

describe('Limiter on Redis', () => {
  it('when a rate window refuses a request, then the budget reservation asked for with it is taken back', async () => {
    const t = await setUp(
      [{ scope: 'key', period: 'total', limitUsd: 10 }],
      [{ scope: 'key', requestsPerMinute: 1 }],
    );
    const ctx = context(t.keyId);
    await t.limiter.acquire(ctx, 10, 40, PRICES);
    expect(await refusalCode(t.limiter.acquire(ctx, 10, 40, PRICES))).toBe('rate_limited');
    // Only the first request's reservation, and its one entry in the window.
    expect(await t.counter(t.budgetKey[0])).toBe(RESERVED);
    expect(await t.counter(t.windowKey[0])).toBe(1);
  });

  it('when a budget refuses a request, then the window entries counted with it are taken back', async () => {
    const t = await setUp(
      [{ scope: 'key', period: 'day', limitUsd: 0.08 }],
      [{ scope: 'key', requestsPerMinute: 100, tokensPerMinute: 10_000 }],
    );
    const ctx = context(t.keyId);
    await t.limiter.acquire(ctx, 10, 40, PRICES);
    expect(await refusalCode(t.limiter.acquire(ctx, 10, 40, PRICES))).toBe('budget_exceeded');
    expect(await t.counter(t.budgetKey[0])).toBe(RESERVED);
    // Requests, then tokens: the refused request's 1 and 10 estimated input tokens are gone again.
    expect(await t.counter(t.windowKey[0])).toBe(1);
    expect(await t.counter(t.windowKey[1])).toBe(10);
  });

  it('when a request is settled, then its budget and token window hold the real amounts and still expire', async () => {
    const t = await setUp(
      [{ scope: 'key', period: 'day', limitUsd: 10 }],
      [{ scope: 'key', tokensPerMinute: 10_000 }],
    );
    const hold = await t.limiter.acquire(context(t.keyId), 10, 40, PRICES);
    await hold.settle(0.012, 25);
    expect(await t.counter(t.budgetKey[0])).toBe(12_000);
    expect(await t.counter(t.windowKey[0])).toBe(25);
    const budgetTtl = await redis.ttl(t.budgetKey[0]!);
    expect(budgetTtl).toBeGreaterThan(0);
    expect(budgetTtl).toBeLessThanOrEqual(2 * 24 * 3600);
    const windowTtl = await redis.pttl(t.windowKey[0]!);
    expect(windowTtl).toBeGreaterThan(0);
    expect(windowTtl).toBeLessThanOrEqual(2 * MINUTE);
  });

  it('when requests from two replicas race for a rate window and a budget, then Redis keeps exactly what the admitted ones hold', async () => {
    const t = await setUp(
      [{ scope: 'key', period: 'total', limitUsd: 1 }],
      [{ scope: 'key', requestsPerMinute: 15 }],
    );
    const other = new Limiter(
      await replica(t.prefix),
      [{ scope: 'key', period: 'total', limitUsd: 1 }],
      [{ scope: 'key', requestsPerMinute: 15 }],
      { now: () => NOW },
    );
    const ctx = context(t.keyId);
    // 60 at once: at most 15 fit the window and at most 20 ($0.05 each) the budget.
    const outcomes = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        refusalCode((i % 2 ? other : t.limiter).acquire(ctx, 10, 40, PRICES)),
      ),
    );
    const admitted = outcomes.filter((o) => o === undefined).length;
    expect(admitted).toBeGreaterThan(0);
    expect(admitted).toBeLessThanOrEqual(15);
    expect(outcomes.every((o) => o === undefined || o === 'rate_limited' || o === 'budget_exceeded')).toBe(
      true,
    );
    expect(await t.counter(t.windowKey[0])).toBe(admitted);
    expect(await t.counter(t.budgetKey[0])).toBe(admitted * RESERVED);
  });
});

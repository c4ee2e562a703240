import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryLimitStore } from '../src/adapters/memory-limit-store.js';
import { RedisLimitStore } from '../src/adapters/redis-limit-store.js';
import type { LimitStore } from '../src/ports/limit-store.js';

/** The Redis the contract suite runs against; deploy/engines/redis.sh brings it up. */
const TEST_REDIS_URL = process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Subject {
  name: string;
  open(): Promise<LimitStore>;
  /** A second independent store on the same counters (another gateway replica). */
  openReplica(first: LimitStore): Promise<LimitStore>;
}

const opened: LimitStore[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
});

const subjects: Subject[] = [
  { name: 'in-process', open: async () => new MemoryLimitStore(), openReplica: async (first) => first },
  {
    name: 'Redis',
    open: async () => {
      const store = await RedisLimitStore.connect(
        TEST_REDIS_URL,
        `test-${randomBytes(4).toString('hex')}:`,
      ).catch((error: Error) => {
        throw new Error(
          `Redis not reachable at ${TEST_REDIS_URL}: run npm run engines:up (${error.message})`,
        );
      });
      opened.push(store);
      return store;
    },
    openReplica: async (first) => {
      const prefix = (first as unknown as { prefix: string }).prefix;
      const store = await RedisLimitStore.connect(TEST_REDIS_URL, prefix);
      opened.push(store);
      return store;
    },
  },
];

/** A seeded generator so a failing case can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const subject of subjects) {
  describe(`LimitStore contract: ${subject.name}`, () => {
    it('when reservations fit, then they are added; when one bucket would overflow, then none is', async () => {
      const store = await subject.open();
      expect(
        await store.reserve([
          { key: 'a', amount: 60, limit: 100, ttlSeconds: 60 },
          { key: 'b', amount: 60, limit: 1000, ttlSeconds: 60 },
        ]),
      ).toEqual({ ok: true });
      const denied = await store.reserve([
        { key: 'b', amount: 50, limit: 1000, ttlSeconds: 60 },
        { key: 'a', amount: 50, limit: 100, ttlSeconds: 60 },
      ]);
      expect(denied).toEqual({ ok: false, key: 'a', current: 60, limit: 100 });
      expect(await store.get('a')).toBe(60);
      expect(await store.get('b')).toBe(60);
    });

    it('when a reservation is settled lower, then the difference is refunded', async () => {
      const store = await subject.open();
      await store.reserve([{ key: 'r', amount: 500, limit: 1000, ttlSeconds: 0 }]);
      await store.adjust([{ key: 'r', delta: -420, ttlSeconds: 0 }]);
      expect(await store.get('r')).toBe(80);
      expect((await store.reserve([{ key: 'r', amount: 920, limit: 1000, ttlSeconds: 0 }])).ok).toBe(true);
    });

    it('when many requests from two replicas reserve at once, then the total never passes the limit', async () => {
      const store = await subject.open();
      const replica = await subject.openReplica(store);
      for (const seed of [1, 2, 3]) {
        const random = prng(seed);
        const key = `race-${seed}`;
        const limit = 10_000;
        const amounts = Array.from({ length: 300 }, () => 1 + Math.floor(random() * 200));
        const results = await Promise.all(
          amounts.map((amount, i) =>
            (i % 2 === 0 ? store : replica).reserve([{ key, amount, limit, ttlSeconds: 60 }]),
          ),
        );
        const granted = amounts.filter((_, i) => results[i]?.ok).reduce((a, b) => a + b, 0);
        expect(granted).toBeLessThanOrEqual(limit);
        expect(await store.get(key)).toBe(granted);
        // Every refusal happened because that amount no longer fitted.
        const smallestRefused = Math.min(...amounts.filter((_, i) => !results[i]?.ok));
        if (Number.isFinite(smallestRefused)) expect(granted + smallestRefused).toBeGreaterThan(limit - 200);
      }
    });

    it('when a sliding window is full, then takes are refused with a retry-after until it decays', async () => {
      const store = await subject.open();
      const minute = 60_000;
      const t0 = 1_800_000_000_000 - (1_800_000_000_000 % minute);
      for (let i = 0; i < 5; i++)
        expect((await store.take('w', 1, 5, minute, t0 + 1_000)).allowed).toBe(true);
      const refused = await store.take('w', 1, 5, minute, t0 + 2_000);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      // Half-way through the next window, half of the previous window still counts (2.5 < 5 - 1).
      expect((await store.take('w', 1, 5, minute, t0 + minute + minute / 2)).allowed).toBe(true);
      expect((await store.take('w', 3, 5, minute, t0 + minute + minute / 2)).allowed).toBe(false);
    });

    it('when tokens are recorded after the fact, then they count against the window', async () => {
      const store = await subject.open();
      const minute = 60_000;
      const now = 1_900_000_000_000;
      await store.record('tpm', 900, minute, now);
      expect((await store.take('tpm', 200, 1000, minute, now)).allowed).toBe(false);
      expect((await store.take('tpm', 100, 1000, minute, now)).allowed).toBe(true);
    });
  });
}

describe('RedisLimitStore', () => {
  it('when Redis is not reachable, then connecting fails with the URL and what to do', async () => {
    await expect(RedisLimitStore.connect('redis://user:secret@127.0.0.1:1')).rejects.toThrow(
      /Cannot reach Redis at redis:\/\/\*\*\*@127\.0\.0\.1:1.*engines:up/,
    );
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { MemorySignalStore } from '../src/adapters/memory-signal-store.js';
import { RedisSignalStore } from '../src/adapters/redis-signal-store.js';
import { signalWindows } from '../src/domain/signals.js';
import type { SignalStore } from '../src/ports/signal-store.js';

const TEST_REDIS_URL = process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const windows = signalWindows({
  windowSeconds: 60,
  repeatWindowSeconds: 300,
  maxPrompts: 4,
  similarity: 0.75,
  idleSeconds: 600,
});

interface Subject {
  name: string;
  open(): Promise<SignalStore>;
  /** Another store on the same counters (a second gateway replica). */
  openReplica(first: SignalStore): Promise<SignalStore>;
}

const opened: SignalStore[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
});

async function redis(prefix: string): Promise<SignalStore> {
  const store = await RedisSignalStore.connect(TEST_REDIS_URL, windows, prefix).catch((error: Error) => {
    throw new Error(`Redis not reachable at ${TEST_REDIS_URL}: run npm run engines:up (${error.message})`);
  });
  opened.push(store);
  return store;
}

const prefixes = new WeakMap<SignalStore, string>();
const subjects: Subject[] = [
  {
    name: 'in-process',
    open: async () => new MemorySignalStore(windows),
    openReplica: async (first) => first,
  },
  {
    name: 'Redis',
    open: async () => {
      const prefix = `test-${randomBytes(4).toString('hex')}:`;
      const store = await redis(prefix);
      prefixes.set(store, prefix);
      return store;
    },
    openReplica: async (first) => redis(prefixes.get(first)!),
  },
];

// A fixed clock far from bucket edges, so windows are deterministic.
const T0 = 1_800_000_000_000;

describe.each(subjects)('signal store: $name', (subject) => {
  it('when requests are observed and recorded, then the window sums them and a replica sees the same', async () => {
    const store = await subject.open();
    const replica = await subject.openReplica(store);
    for (let i = 0; i < 3; i++) {
      await store.observe(['job/a'], T0 + i * 1000, undefined, undefined);
      await replica.record(['job/a'], T0 + i * 1000 + 500, {
        costMicros: 250_000,
        tokens: 100,
        failed: i === 2,
      });
    }
    const { totals } = await replica.observe(['job/a'], T0 + 10_000, undefined, undefined);
    expect(totals[0]).toMatchObject({
      requests: 4,
      finished: 3,
      errors: 1,
      costMicros: 750_000,
      tokens: 300,
      firstSeenAt: T0,
      totalCostMicros: 750_000,
    });
  });

  it('when the window has passed, then old counts drop out but the job keeps its start and total spend', async () => {
    const store = await subject.open();
    await store.observe(['job/b'], T0, undefined, undefined);
    await store.record(['job/b'], T0, { costMicros: 1_000_000, tokens: 10, failed: false });
    const later = await store.observe(['job/b'], T0 + 2 * windows.windowMs, undefined, undefined);
    expect(later.totals[0]).toMatchObject({ requests: 1, finished: 0, costMicros: 0, firstSeenAt: T0 });
    expect(later.totals[0]?.totalCostMicros).toBe(1_000_000);
  });

  it('when a subject is idle longer than the idle time, then it starts over', async () => {
    const store = await subject.open();
    await store.observe(['job/c'], T0, 'f'.repeat(136), undefined);
    await store.record(['job/c'], T0, { costMicros: 5, tokens: 1, failed: false });
    const after = T0 + windows.idleMs + 60_000;
    const { totals } = await store.observe(['job/c'], after, undefined, undefined);
    expect(totals[0]).toMatchObject({ requests: 1, firstSeenAt: after, totalCostMicros: 0, prompts: [] });
  });

  it('when prompts are observed, then earlier ones come back most recent first, bounded, without the current one', async () => {
    const store = await subject.open();
    const f = (n: number) => n.toString(16).padStart(136, '0');
    for (let i = 1; i <= 6; i++) {
      const { totals } = await store.observe(['session/s'], T0 + i, f(i), undefined);
      expect(totals[0]?.prompts[0]?.fingerprint).toBe(i === 1 ? undefined : f(i - 1));
    }
    const { totals } = await store.observe(['session/s'], T0 + 10, undefined, undefined);
    expect(totals[0]?.prompts.map((p) => p.fingerprint)).toEqual([f(6), f(5), f(4), f(3)]);
    expect(totals[0]?.prompts[0]?.at).toBe(T0 + 6);
  });

  it('when peeking, then nothing is counted, and an unknown subject has no totals', async () => {
    const store = await subject.open();
    expect(await store.peek('key/nobody', T0)).toBeUndefined();
    await store.observe(['key/k'], T0, undefined, undefined);
    await store.peek('key/k', T0 + 1);
    expect((await store.peek('key/k', T0 + 2))?.requests).toBe(1);
  });

  it('when a job is stopped, then observing it returns the stop until it is cleared, on every replica', async () => {
    const store = await subject.open();
    const replica = await subject.openReplica(store);
    const stop = {
      job: 'j1',
      stoppedAt: T0,
      reason: 'looping',
      actor: 'policy/p@abc rule r',
      decisionId: 'd1',
      rule: 'r',
    };
    await store.stopJob(stop);
    expect((await replica.observe(['job/j1'], T0 + 1, undefined, 'j1')).stop).toEqual(stop);
    expect(await replica.jobStop('j1')).toEqual(stop);
    expect(await replica.clearJob('j1')).toEqual(stop);
    expect((await store.observe(['job/j1'], T0 + 2, undefined, 'j1')).stop).toBeUndefined();
    expect(await store.clearJob('j1')).toBeUndefined();
  });

  it('when many requests of one subject arrive at once, then every one is counted', async () => {
    const store = await subject.open();
    const replica = await subject.openReplica(store);
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        (i % 2 ? store : replica).observe(['job/busy'], T0 + i, undefined, undefined),
      ),
    );
    expect((await store.peek('job/busy', T0 + 300))?.requests).toBe(200);
  });

  it('when a request belongs to several subjects, then one call counts it in each, and a key is measured across its jobs', async () => {
    const store = await subject.open();
    const replica = await subject.openReplica(store);
    const prompt = 'a'.repeat(136);
    for (let i = 0; i < 5; i++) {
      const { totals } = await (i % 2 ? replica : store).observe(
        [`job/spread-${i}`, 'session/s1', 'key/k1'],
        T0 + i * 1000,
        prompt,
        `spread-${i}`,
      );
      expect(totals.map((t) => t.requests)).toEqual([1, i + 1, i + 1]);
      // Each job is new; the session and the key have seen this prompt i times before.
      expect(totals.map((t) => t.prompts.length)).toEqual([0, Math.min(i, 4), Math.min(i, 4)]);
      await (i % 2 ? store : replica).record(
        [`job/spread-${i}`, 'session/s1', 'key/k1'],
        T0 + i * 1000 + 10,
        { costMicros: 100, tokens: 7, failed: i === 4 },
      );
    }
    expect(await store.peek('key/k1', T0 + 6000)).toMatchObject({
      requests: 5,
      finished: 5,
      errors: 1,
      costMicros: 500,
      tokens: 35,
      totalCostMicros: 500,
      firstSeenAt: T0,
    });
    expect(await replica.peek('job/spread-3', T0 + 6000)).toMatchObject({
      requests: 1,
      finished: 1,
      tokens: 7,
    });
    expect((await store.peek('session/s1', T0 + 6000))?.requests).toBe(5);
  });

  it('when several subjects are observed with a stopped job, then the stop comes back with every total', async () => {
    const store = await subject.open();
    const stop = { job: 'j2', stoppedAt: T0, reason: 'looping', actor: 'admin' };
    await store.stopJob(stop);
    const { totals, stop: seen } = await store.observe(['job/j2', 'key/k2'], T0 + 1, undefined, 'j2');
    expect(seen).toEqual(stop);
    expect(totals.map((t) => t.requests)).toEqual([1, 1]);
  });
});

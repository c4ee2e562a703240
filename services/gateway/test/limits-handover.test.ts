import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { FallbackLimitStore, type LimitsHandOver } from '../src/adapters/fallback-limit-store.js';
import { MemoryLimitStore } from '../src/adapters/memory-limit-store.js';
import { RedisLimitStore } from '../src/adapters/redis-limit-store.js';
import { gatedRedis, untilRecovered as recovered, TEST_REDIS_URL } from './limits-outage.js';

const closing: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const c of closing) await c.close();
});

let clock = Date.now();
const now = (): number => clock;
const budget = (amount: number) => [{ key: 'budget:team', amount, limit: 10_000, ttlSeconds: 3600 }];

async function replica(url: string, prefix: string) {
  const handOvers: LimitsHandOver[] = [];
  const local = new MemoryLimitStore(now);
  const store = new FallbackLimitStore(await RedisLimitStore.open(url, prefix), local, 'local', {
    retryMs: 1000,
    now,
    onHandOver: (h) => handOvers.push(h),
  });
  closing.push(store);
  return { store, local, handOvers };
}

const untilRecovered = (store: FallbackLimitStore) =>
  recovered(store, (ms) => {
    clock += ms;
  });

describe('when Redis comes back after an outage with limitsFallback local', () => {
  it('then what each replica counted locally is added to the Redis counters exactly once', async () => {
    const prefix = `test-handover-${randomBytes(4).toString('hex')}:`;
    const { gate, url } = await gatedRedis();
    closing.push({ close: () => gate.cut() });
    const direct = await RedisLimitStore.connect(TEST_REDIS_URL.href, prefix);
    closing.push(direct);
    const a = await replica(url, prefix);
    const b = await replica(url, prefix);

    expect(await a.store.reserve(budget(100))).toEqual({ ok: true });
    expect(await direct.get('budget:team')).toBe(100);

    await gate.cut();
    await new Promise((r) => setTimeout(r, 100));
    expect(await a.store.reserve(budget(30))).toEqual({ ok: true });
    expect(a.store.degraded).toBe(true);
    expect(await b.store.reserve(budget(50))).toEqual({ ok: true });
    const tokenWindow = Math.floor(clock / 60_000);
    await a.store.record('tokens:team', 500, 60_000, clock);
    // A one-second window: over (and expired) by the time Redis is back, so not carried.
    await a.store.record('burst:team', 7, 1000, clock);
    const burstWindow = Math.floor(clock / 1000);
    // Reserved during the outage, settled after it.
    expect(await a.store.reserve(budget(40))).toEqual({ ok: true });
    expect(await direct.get('budget:team')).toBe(100);

    clock += 2500; // the one-second window's counter (kept for two windows) has expired
    await gate.open();
    await untilRecovered(a.store);
    expect(await direct.get('budget:team')).toBe(100 + 30 + 40);
    expect(await direct.get(`tokens:team:${tokenWindow}`)).toBe(500);
    expect(await direct.get(`burst:team:${burstWindow}`)).toBe(0);
    expect(a.handOvers).toEqual([
      { added: true, amounts: { 'budget:team': 70, [`tokens:team:${tokenWindow}`]: 500 } },
    ]);
    expect(await a.local.get('budget:team')).toBe(0);

    // The reservation made locally moved with its counter: settling it on Redis refunds the right store.
    await a.store.adjust([{ key: 'budget:team', delta: -15, ttlSeconds: 3600 }]);
    expect(await direct.get('budget:team')).toBe(155);

    // /readyz says so while the hand-over runs.
    clock += 1000;
    const first = b.store.check();
    expect(await b.store.check()).toMatch(/^degraded: handing over .* to the shared store$/);
    await first;
    await untilRecovered(b.store);
    expect(await direct.get('budget:team')).toBe(155 + 50);
    expect(b.handOvers).toEqual([{ added: true, amounts: { 'budget:team': 50 } }]);

    // Another outage with nothing spent hands nothing over.
    await gate.cut();
    await new Promise((r) => setTimeout(r, 100));
    await a.store.get('budget:team');
    expect(a.store.degraded).toBe(true);
    await gate.open();
    await untilRecovered(a.store);
    expect(a.handOvers).toHaveLength(1);
    expect(await direct.get('budget:team')).toBe(205);
  }, 30_000);

  it('then an attempt to recover while Redis is still down leaves the local counters enforcing', async () => {
    const { gate, url } = await gatedRedis();
    const a = await replica(url, `test-handover-${randomBytes(4).toString('hex')}:`);
    await gate.cut();
    await new Promise((r) => setTimeout(r, 100));
    const capped = (amount: number) => [{ key: 'budget:capped', amount, limit: 100, ttlSeconds: 3600 }];
    expect(await a.store.reserve(capped(80))).toEqual({ ok: true });
    clock += 1000; // the next operation tries Redis again, and fails
    expect(await a.store.reserve(capped(30))).toMatchObject({ ok: false, current: 80 });
    expect(a.store.degraded).toBe(true);
    expect(a.handOvers).toEqual([]);
  });

  it('then a repeated hand-over of the same batch (a retry after a lost reply) adds nothing', async () => {
    const direct = await RedisLimitStore.connect(
      TEST_REDIS_URL.href,
      `test-handover-${randomBytes(4).toString('hex')}:`,
    );
    closing.push(direct);
    const batch = [
      { key: 'budget:key', value: 25, ttlMs: 60_000 },
      { key: 'tokens:key', value: 300, ttlMs: 0 },
    ];
    expect(await direct.handOver('replica-1:1', batch)).toBe(true);
    expect(await direct.handOver('replica-1:1', batch)).toBe(false);
    expect(await direct.get('budget:key')).toBe(25);
    expect(await direct.get('tokens:key')).toBe(300);
    // Another replica's batch is its own.
    expect(await direct.handOver('replica-2:1', batch)).toBe(true);
    expect(await direct.get('budget:key')).toBe(50);
  });
});

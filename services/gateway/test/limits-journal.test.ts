import { randomBytes } from 'node:crypto';
import { migrate } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FallbackLimitStore, type LimitsHandOver } from '../src/adapters/fallback-limit-store.js';
import { MemoryLimitStore } from '../src/adapters/memory-limit-store.js';
import { gatewayMigrations } from '../src/adapters/migrations.js';
import { RedisLimitStore } from '../src/adapters/redis-limit-store.js';
import { SqlLimitsJournal } from '../src/adapters/sql-limits-journal.js';
import { openTestPostgres, type TestDatabase } from './databases.js';
import { freePort } from './ports.js';
import { TcpGate } from './tcp-gate.js';

// Local counts during a Redis outage are journaled in the gateway's PostgreSQL as they accrue, so a
// replica that dies before Redis is back does not take them with it: another replica hands them over.
const TEST_REDIS_URL = new URL(process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');

const closing: Array<{ close(): Promise<void> }> = [];
let database: TestDatabase;
beforeAll(async () => {
  database = await openTestPostgres();
  await migrate(database.db, gatewayMigrations);
});
afterAll(async () => {
  for (const c of closing.reverse()) await c.close();
  await database?.drop();
});

let clock = Date.now();
const now = (): number => clock;
const budget = (amount: number) => [{ key: 'budget:team', amount, limit: 10_000, ttlSeconds: 3600 }];

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function replica(url: string, prefix: string, journal: SqlLimitsJournal) {
  const handOvers: LimitsHandOver[] = [];
  const store = new FallbackLimitStore(
    await RedisLimitStore.open(url, prefix),
    new MemoryLimitStore(now),
    'local',
    {
      retryMs: 1000,
      now,
      journal,
      journalMs: 50,
      onHandOver: (h) => handOvers.push(h),
    },
  );
  return { store, handOvers };
}

describe('when a replica dies during a Redis outage with limitsFallback local', () => {
  it('then another replica hands its journaled counts over to Redis exactly once', async () => {
    const prefix = `test-journal-${randomBytes(4).toString('hex')}:`;
    const gate = new TcpGate(await freePort(), {
      host: TEST_REDIS_URL.hostname,
      port: Number(TEST_REDIS_URL.port || 6379),
    });
    closing.push({ close: () => gate.cut() }, await RedisLimitStore.connect(TEST_REDIS_URL.href, prefix));
    const direct = closing[closing.length - 1] as RedisLimitStore;
    await gate.open();
    const url = `redis://127.0.0.1:${gate.port}`;
    const journal = new SqlLimitsJournal(database.db);
    const a = await replica(url, prefix, journal);
    const b = await replica(url, prefix, new SqlLimitsJournal(await database.openAnother()));

    expect(await a.store.reserve(budget(100))).toEqual({ ok: true });
    await gate.cut();
    await new Promise((r) => setTimeout(r, 100));
    expect(await a.store.reserve(budget(30))).toEqual({ ok: true });
    expect(await b.store.reserve(budget(50))).toEqual({ ok: true });
    await b.store.adjust([{ key: 'budget:team', delta: -5, ttlSeconds: 3600 }]);
    const tokenWindow = Math.floor(clock / 60_000);
    await b.store.record('tokens:team', 500, 60_000, clock);
    expect(b.store.degraded).toBe(true);
    // B's counts reach the journal within a tick, batched, not per operation.
    const journaled = async () => {
      const batches = await journal.pending(100);
      return batches
        .flatMap((batch) => batch.counters)
        .reduce((sum, c) => sum + (c.key === 'budget:team' ? c.value : 0), 0);
    };
    await until('both replicas journaled', async () => (await journaled()) === 30 + 45);

    // B dies: no hand-over, no shutdown; its memory is gone. A is the one to find Redis back.
    // (B stays degraded: nothing uses it, so it never finds Redis back.)
    await gate.open();
    for (let i = 0; i < 50 && a.store.degraded; i++) {
      clock += 1000;
      await a.store.check();
      if (a.store.degraded) await new Promise((r) => setTimeout(r, 100));
    }
    expect(await a.store.check()).toBe('ok');
    expect(await direct.get('budget:team')).toBe(100 + 30 + 45);
    expect(await direct.get(`tokens:team:${tokenWindow}`)).toBe(500);
    expect(await journal.pending(100)).toEqual([]);
    expect(a.handOvers.every((h) => h.added)).toBe(true);

    // A replica started later sweeps too: nothing left, nothing added twice.
    const c = await replica(url, prefix, journal);
    await c.store.get('budget:team');
    clock += 60_000;
    await new Promise((r) => setTimeout(r, 200));
    expect(c.handOvers).toEqual([]);
    expect(await direct.get('budget:team')).toBe(175);
    // Its replicas would sweep the next test's journal batches into this test's Redis prefix.
    for (const r of [a, b, c]) await r.store.close();
  }, 30_000);

  it('then a batch handed over by two replicas at once is added once', async () => {
    const prefix = `test-journal-${randomBytes(4).toString('hex')}:`;
    const direct = await RedisLimitStore.connect(TEST_REDIS_URL.href, prefix);
    closing.push(direct);
    const journal = new SqlLimitsJournal(database.db);
    await journal.append('dead-replica', [
      { key: 'budget:shared', value: 40, expiresAt: clock + 3_600_000 },
      // A rate window that is over by now: not carried.
      { key: 'rate:over:1', value: 9, expiresAt: clock - 1 },
    ]);
    const [x, y] = [
      await replica(TEST_REDIS_URL.href, prefix, journal),
      await replica(TEST_REDIS_URL.href, prefix, journal),
    ];
    closing.push(x.store, y.store);
    clock += 60_000;
    await until('the batch handed over', async () => (await journal.pending(10)).length === 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(await direct.get('budget:shared')).toBe(40);
    expect(await direct.get('rate:over:1')).toBe(0);
    expect([...x.handOvers, ...y.handOvers].filter((h) => h.added)).toEqual([
      { added: true, amounts: { 'budget:shared': 40 } },
    ]);
  }, 30_000);
});

import { randomBytes, randomUUID } from 'node:crypto';
import { migrate, openPostgres, type Queryable } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FallbackLimitStore,
  type FallbackLimitStoreOptions,
  type LimitsHandOver,
} from '../src/adapters/fallback-limit-store.js';
import { MemoryLimitStore } from '../src/adapters/memory-limit-store.js';
import { gatewayMigrations } from '../src/adapters/migrations.js';
import { RedisLimitStore } from '../src/adapters/redis-limit-store.js';
import { SqlLimitsJournal } from '../src/adapters/sql-limits-journal.js';
import { openTestPostgres, TEST_PG_URL, type TestDatabase } from './databases.js';
import { gatedRedis, untilRecovered as recovered, TEST_REDIS_URL } from './limits-outage.js';
import { holdLocks, untilWaitingForLock } from './pg-locks.js';
import { freePort } from './ports.js';
import { TcpGate } from './tcp-gate.js';

// Local counts during a Redis outage are journaled in the gateway's PostgreSQL as they accrue, so a
// replica that dies before Redis is back does not take them with it: another replica hands them over.

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
const untilRecovered = (store: FallbackLimitStore) =>
  recovered(store, (ms) => {
    clock += ms;
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The journal's rows (batches not handed over yet), oldest first, by the replica that wrote each. */
async function journalRows(): Promise<string[]> {
  const { rows } = await database.db.query<{ replica: string }>(
    'select replica from limits_journal where handed_at is null order by seq',
  );
  return rows.map((r) => r.replica);
}

/** What the journal holds for a counter, not handed over yet. */
async function journaled(key: string): Promise<number> {
  const { rows } = await database.db.query<{ value: string }>(
    `select coalesce(sum((c->>'value')::numeric), 0)::text as value
       from limits_journal j, jsonb_array_elements(j.counters) c where c->>'key' = $1`,
    [key],
  );
  return Number(rows[0]?.value ?? 0);
}

/** A Redis prefix of the test's own, a gate the replicas reach Redis by, and a direct client. */
async function redisOfItsOwn() {
  const prefix = `test-journal-${randomBytes(4).toString('hex')}:`;
  const { gate, url } = await gatedRedis();
  const direct = await RedisLimitStore.connect(TEST_REDIS_URL.href, prefix);
  closing.push({ close: () => gate.cut() }, direct);
  return { prefix, gate, url, direct };
}

/** The test's database reached through a gate: cutting it drops the connections in flight. */
async function gatedDatabase() {
  const pg = new URL(TEST_PG_URL);
  const pgGate = new TcpGate(await freePort(), { host: pg.hostname, port: Number(pg.port || 5432) });
  await pgGate.open();
  const { rows } = await database.db.query<{ schema: string }>('select current_schema() as schema');
  pg.host = `127.0.0.1:${pgGate.port}`;
  pg.searchParams.set('options', `-csearch_path=${rows[0]?.schema}`);
  const gatedDb = await openPostgres(pg.href, { max: 2, connectionTimeoutMillis: 1_000 });
  closing.push({ close: () => pgGate.cut() }, gatedDb);
  return { pgGate, gatedDb };
}

async function replica(
  url: string,
  prefix: string,
  journal: SqlLimitsJournal,
  options: Pick<FallbackLimitStoreOptions, 'sweepMs' | 'onJournalError'> = {},
) {
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
      ...options,
    },
  );
  return { store, handOvers };
}

describe('when a replica dies during a Redis outage with limitsFallback local', () => {
  it('then another replica hands its journaled counts over to Redis exactly once', async () => {
    const { prefix, gate, url, direct } = await redisOfItsOwn();
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
    await until('both replicas journaled', async () => (await journaled('budget:team')) === 30 + 45);

    // B dies: no hand-over, no shutdown; its memory is gone. A is the one to find Redis back.
    // (B stays degraded: nothing uses it, so it never finds Redis back.)
    await gate.open();
    await untilRecovered(a.store);
    expect(await direct.get('budget:team')).toBe(100 + 30 + 45);
    expect(await direct.get(`tokens:team:${tokenWindow}`)).toBe(500);
    expect(await journalRows()).toEqual([]);
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
    await journal.append(
      { id: randomUUID(), replica: 'dead-replica', outage: randomUUID() },
      {
        seq: 1,
        counters: [
          { key: 'budget:shared', value: 40, expiresAt: clock + 3_600_000 },
          // A rate window that is over by now: not carried.
          { key: 'rate:over:1', value: 9, expiresAt: clock - 1 },
        ],
      },
    );
    const [x, y] = [
      await replica(TEST_REDIS_URL.href, prefix, journal),
      await replica(TEST_REDIS_URL.href, prefix, journal),
    ];
    clock += 60_000;
    await until('the batch handed over', async () => (await journalRows()).length === 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(await direct.get('budget:shared')).toBe(40);
    expect(await direct.get('rate:over:1')).toBe(0);
    expect([...x.handOvers, ...y.handOvers].filter((h) => h.added)).toEqual([
      { added: true, amounts: { 'budget:shared': 40 } },
    ]);
    for (const r of [x, y]) await r.store.close();
  }, 30_000);
});

describe('when a replica restarts during a Redis outage with limitsFallback local', () => {
  it('then it counts on from what the journal holds for the outage, and hands none of it over twice', async () => {
    const { prefix, gate, url, direct } = await redisOfItsOwn();
    const journal = new SqlLimitsJournal(database.db);
    const capped = (amount: number) => [{ key: 'budget:capped', amount, limit: 100, ttlSeconds: 3600 }];
    const a = await replica(url, prefix, journal);
    const b = await replica(url, prefix, new SqlLimitsJournal(await database.openAnother()));
    expect(await a.store.reserve(capped(10))).toEqual({ ok: true });

    await gate.cut();
    await sleep(100);
    expect(await a.store.reserve(capped(50))).toEqual({ ok: true });
    expect(await b.store.reserve(capped(20))).toEqual({ ok: true });
    const tokenWindow = Math.floor(clock / 60_000);
    await a.store.record('tokens:team', 500, 60_000, clock);
    const burstWindow = Math.floor(clock / 1000);
    await a.store.record('burst:team', 7, 1000, clock);
    await until('both replicas journaled', async () => (await journaled('budget:capped')) === 70);

    // A is killed (no shutdown: it is never used again) and starts again as a new process, its
    // memory gone, while Redis is still unreachable.
    clock += 2500; // the one-second window is over (its counter expired): nothing to seed for it
    const restarted = await replica(url, prefix, journal);
    // Its budget counts what was spent locally during the outage, by itself before and by B: not 0.
    expect(await restarted.store.reserve(capped(31))).toEqual({
      ok: false,
      key: 'budget:capped',
      current: 70,
      limit: 100,
    });
    expect(restarted.store.degraded).toBe(true);
    expect(await restarted.store.reserve(capped(30))).toEqual({ ok: true });
    expect(await restarted.store.get(`tokens:team:${tokenWindow}`)).toBe(500);
    expect(await restarted.store.get(`burst:team:${burstWindow}`)).toBe(0);

    // Once Redis is back, each amount reaches it once: the seed is in the journal already.
    await gate.open();
    await untilRecovered(restarted.store);
    expect(await direct.get('budget:capped')).toBe(10 + 50 + 20 + 30);
    expect(await direct.get(`tokens:team:${tokenWindow}`)).toBe(500);
    expect(await journalRows()).toEqual([]);
    await untilRecovered(b.store);
    expect(await direct.get('budget:capped')).toBe(110);
    for (const r of [a, b, restarted]) await r.store.close();
  }, 30_000);

  it('then a seed the journal could not give at first is added later, without its own counts in it twice', async () => {
    const { prefix, gate, url, direct } = await redisOfItsOwn();
    // The restarted replica reaches PostgreSQL through a gate too: the journal is down when it falls back.
    const { pgGate, gatedDb } = await gatedDatabase();
    const capped = (amount: number) => [{ key: 'budget:late', amount, limit: 100, ttlSeconds: 3600 }];
    const b = await replica(url, prefix, new SqlLimitsJournal(database.db));
    await gate.cut();
    await sleep(100);
    expect(await b.store.reserve(capped(40))).toEqual({ ok: true });
    await until('B journaled', async () => (await journaled('budget:late')) === 40);

    await pgGate.cut();
    const restarted = await replica(url, prefix, new SqlLimitsJournal(gatedDb));
    // No seed to be had: it counts from zero meanwhile (and cannot journal either).
    expect(await restarted.store.reserve(capped(70))).toEqual({ ok: true });
    await pgGate.open();
    await until('its own count journaled', async () => (await journaled('budget:late')) === 110);
    // The seed came with the journal: B's 40, not the restarted replica's own 70 a second time.
    await until('seeded', async () => (await restarted.store.get('budget:late')) === 110);
    expect(await restarted.store.reserve(capped(1))).toMatchObject({ ok: false, current: 110 });

    await gate.open();
    await untilRecovered(restarted.store);
    expect(await direct.get('budget:late')).toBe(110);
    for (const r of [b, restarted]) await r.store.close();
  }, 30_000);
});

describe('when a Redis outage lasts many journal intervals', () => {
  it('then each replica journals its counts in one row for the outage, handed over exactly once', async () => {
    const { prefix, gate, url, direct } = await redisOfItsOwn();
    const a = await replica(url, prefix, new SqlLimitsJournal(database.db));
    const b = await replica(url, prefix, new SqlLimitsJournal(await database.openAnother()));
    await gate.cut();
    await sleep(100);
    for (let i = 1; i <= 10; i++) {
      expect(await a.store.reserve(budget(1))).toEqual({ ok: true });
      expect(await b.store.reserve(budget(2))).toEqual({ ok: true });
      await until(`interval ${i} journaled`, async () => (await journaled('budget:team')) === 3 * i);
    }
    const rows = await journalRows();
    expect(rows).toHaveLength(2);
    expect(new Set(rows).size).toBe(2);

    await gate.open();
    await untilRecovered(a.store);
    expect(await direct.get('budget:team')).toBe(30);
    expect(await journalRows()).toEqual([]);
    expect(a.handOvers).toEqual([{ added: true, amounts: { 'budget:team': 30 } }]);
    await untilRecovered(b.store);
    expect(await direct.get('budget:team')).toBe(30);
    for (const r of [a, b]) await r.store.close();
  }, 30_000);

  it('then a row sealed by a hand-over while its replica still counts is handed over once, and the replica goes on in a new row', async () => {
    const { prefix, gate, url, direct } = await redisOfItsOwn();
    const journal = new SqlLimitsJournal(database.db);
    // B counts locally (Redis cut off from it alone); A reaches Redis and sweeps the journal at every tick.
    const b = await replica(url, prefix, new SqlLimitsJournal(await database.openAnother()));
    await gate.cut();
    const a = await replica(TEST_REDIS_URL.href, prefix, journal, { sweepMs: 0 });
    await a.store.get('budget:team');
    for (let i = 0; i < 40; i++) {
      expect(await b.store.reserve(budget(1))).toEqual({ ok: true });
      // A replica that seals the rows for a hand-over and dies before it.
      if (i === 20) await journal.claim(100);
      await sleep(15);
    }
    expect(b.store.degraded).toBe(true);
    await until('every count handed over', async () => (await direct.get('budget:team')) === 40);
    await until('the journal emptied', async () => (await journalRows()).length === 0);
    expect(a.handOvers.filter((h) => h.added).length).toBeGreaterThan(1);
    await sleep(200);
    expect(await direct.get('budget:team')).toBe(40);
    for (const r of [a, b]) await r.store.close();
  }, 30_000);
});

describe('when a journal write commits but its reply is lost (the connection cut while it ran)', () => {
  /** A replica counting locally (Redis cut off), reaching the journal through a gate of its own. */
  async function degradedBehindGates() {
    const { prefix, gate, url, direct } = await redisOfItsOwn();
    const { pgGate, gatedDb } = await gatedDatabase();
    const errors: unknown[] = [];
    const a = await replica(url, prefix, new SqlLimitsJournal(gatedDb), {
      onJournalError: (e) => errors.push(e),
    });
    await gate.cut();
    await sleep(100);
    return { gate, direct, pgGate, errors, a };
  }

  /**
   * Has the journal write that `count` brings about reach the server, wait there behind the locks
   * `lock` takes, and lose its connection; then lets it run on. The replica sees it fail.
   */
  async function loseReply(
    { pgGate, errors }: { pgGate: TcpGate; errors: unknown[] },
    lock: (tx: Queryable) => Promise<unknown>,
    statement: string,
    count: () => Promise<void>,
  ): Promise<void> {
    const holder = await holdLocks(database.db, lock);
    await count();
    await untilWaitingForLock(database.db, statement);
    await pgGate.cut();
    await until('the write failed', async () => errors.length > 0);
    await holder.release();
  }

  /** Spends on a key of the test's own: the journal holds every test's rows meanwhile. */
  const spend = (key: string, amount: number) => [{ key, amount, limit: 10_000, ttlSeconds: 3600 }];

  it('then the replica retries it as it was: the row counts it once, the next write is counted, and the hand-over is exact', async () => {
    const key = 'budget:lost-reply';
    const { gate, direct, pgGate, errors, a } = await degradedBehindGates();
    expect(await a.store.reserve(spend(key, 10))).toEqual({ ok: true });
    await until('the first write', async () => (await journaled(key)) === 10);

    // A hand-over sealing rows holds the row's lock: the next write reaches the server and waits there.
    await loseReply(
      { pgGate, errors },
      (tx) =>
        tx.query(
          `select 1 from limits_journal j
            where exists (select 1 from jsonb_array_elements(j.counters) c where c->>'key' = $1) for update`,
          [key],
        ),
      'update limits_journal',
      async () => expect(await a.store.reserve(spend(key, 5))).toEqual({ ok: true }),
    );
    // The server ran it to the end: committed, its reply sent to nobody.
    await until('the lost write committed', async () => (await journaled(key)) === 15);

    await pgGate.open();
    expect(await a.store.reserve(spend(key, 7))).toEqual({ ok: true });
    await until('the next write', async () => (await journaled(key)) >= 22);
    await sleep(200);
    expect(await journaled(key)).toBe(22);
    expect(await a.store.get(key)).toBe(22);

    await gate.open();
    await untilRecovered(a.store);
    expect(await direct.get(key)).toBe(22);
    expect(await journalRows()).toEqual([]);
    await a.store.close();
  }, 30_000);

  it('then, if it created the row and Redis is back before the database, its counts are handed over once, directly and not again from the row', async () => {
    const key = 'budget:lost-creation';
    const { gate, direct, pgGate, errors, a } = await degradedBehindGates();

    // Something holds the table (a migration, say): the row's creation reaches the server and waits.
    await loseReply(
      { pgGate, errors },
      (tx) => tx.query('lock table limits_journal in share mode'),
      'insert into limits_journal',
      async () => expect(await a.store.reserve(spend(key, 10))).toEqual({ ok: true }),
    );
    await until('the lost creation committed', async () => (await journaled(key)) === 10);

    // Redis is back, the database still unreachable for this replica: the counts go to Redis directly.
    await gate.open();
    await untilRecovered(a.store);
    expect(await direct.get(key)).toBe(10);

    // The database is back: the row is handed over by a sweep, and Redis adds it no second time.
    await pgGate.open();
    clock += 60_000;
    await until('the row handed over', async () => (await journaled(key)) === 0);
    await sleep(200);
    expect(await direct.get(key)).toBe(10);
    await a.store.close();
  }, 30_000);

  it('then, if the database is unreachable as Redis comes back, a write it never took is retried, and reaches Redis with its row', async () => {
    const key = 'budget:unsent';
    const { gate, direct, pgGate, errors, a } = await degradedBehindGates();
    expect(await a.store.reserve(spend(key, 10))).toEqual({ ok: true });
    await until('the first write', async () => (await journaled(key)) === 10);
    await pgGate.cut();
    expect(await a.store.reserve(spend(key, 5))).toEqual({ ok: true });
    await until('the write failed', async () => errors.length > 0);

    await gate.open();
    await untilRecovered(a.store);
    // The 10 are in the journal, the 5 in the replica's memory: both wait for the database.
    expect(await direct.get(key)).toBe(0);
    await pgGate.open();
    clock += 60_000;
    await until('handed over', async () => (await direct.get(key)) === 15 && (await journaled(key)) === 0);
    await sleep(200);
    expect(await direct.get(key)).toBe(15);
    await a.store.close();
  }, 30_000);
});

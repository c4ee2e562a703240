import { randomUUID } from 'node:crypto';
import { migrate } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayMigrations } from '../src/adapters/migrations.js';
import { SqlLimitsJournal } from '../src/adapters/sql-limits-journal.js';
import type { JournalRow } from '../src/ports/limits-journal.js';
import { openTestPglite, openTestPostgres, type TestDatabase } from './databases.js';
import { holdLocks, untilWaitingForLock } from './pg-locks.js';

// A journal write whose reply is lost is retried by its replica with the same seq: the row must take
// it once, or a budget is over-counted after the hand-over (a customer refused spend they still have).

const KEY = 'budget:team';
const add = (value: number) => [{ key: KEY, value, expiresAt: 0 }];

describe.each([
  ['PostgreSQL', openTestPostgres],
  ['PGlite', openTestPglite],
])('the limits journal on %s', (engine, open) => {
  let database: TestDatabase;
  let journal: SqlLimitsJournal;
  beforeAll(async () => {
    database = await open();
    await migrate(database.db, gatewayMigrations);
    journal = new SqlLimitsJournal(database.db);
  });
  afterAll(() => database?.drop());

  const newRow = (): JournalRow => ({ id: randomUUID(), replica: 'replica-a', outage: randomUUID() });
  /** What the row holds for KEY, not handed over yet. */
  async function held(row: JournalRow): Promise<number> {
    const { rows } = await database.db.query<{ value: string }>(
      `select coalesce(sum((c->>'value')::numeric), 0)::text as value
         from limits_journal j, jsonb_array_elements(j.counters) c where j.id = $1 and c->>'key' = $2`,
      [row.id, KEY],
    );
    return Number(rows[0]?.value ?? 0);
  }
  /** Seals every row and hands none over; what a claimer that died before handing over leaves. */
  const claimAll = () => journal.claim(1_000);

  it('when a write that committed is retried with the same seq, then the row counts it once, and the next write is counted', async () => {
    const row = newRow();
    expect(await journal.append(row, { seq: 1, counters: add(10) })).toBe(true);
    // The reply was lost: the replica retries the creating write as it was.
    expect(await journal.append(row, { seq: 1, counters: add(10) })).toBe(true);
    expect(await held(row)).toBe(10);
    expect(await journal.append(row, { seq: 2, counters: add(5) })).toBe(true);
    expect(await journal.append(row, { seq: 2, counters: add(5) })).toBe(true);
    expect(await held(row)).toBe(15);
    expect(await journal.append(row, { seq: 3, counters: add(7) })).toBe(true);
    expect(await held(row)).toBe(22);
    // A late duplicate of an older write (delayed on the network) adds nothing either.
    expect(await journal.append(row, { seq: 2, counters: add(5) })).toBe(true);
    expect(await held(row)).toBe(22);
  });

  it('when a row is sealed, then a new write is refused, a retry of one it holds is confirmed, and its batch holds each write once', async () => {
    const row = newRow();
    await journal.append(row, { seq: 1, counters: add(10) });
    await journal.append(row, { seq: 2, counters: add(5) });
    const sealed = (await claimAll()).filter((b) => b.id === row.id);
    expect(sealed).toEqual([
      { id: row.id, replica: 'replica-a', counters: [{ key: KEY, value: 15, expiresAt: 0 }] },
    ]);

    // Not in the sealed batch: the replica writes it to a new row.
    expect(await journal.append(row, { seq: 3, counters: add(7) })).toBe(false);
    // In it already (its reply was lost before the seal): nothing to write again.
    expect(await journal.append(row, { seq: 2, counters: add(5) })).toBe(true);
    expect((await claimAll()).filter((b) => b.id === row.id)).toEqual(sealed);

    // Handed over, with the rows of the tests before.
    await journal.handed((await claimAll()).map((b) => b.id));
    expect(await claimAll()).toEqual([]);
    expect(await journal.outstanding('none', Date.now())).toEqual([]);
    // After the hand-over the row still answers a retry, and still refuses a new write.
    expect(await journal.append(row, { seq: 2, counters: add(5) })).toBe(true);
    expect(await journal.append(row, { seq: 3, counters: add(7) })).toBe(false);
    expect(await journal.append(row, { seq: 1, counters: add(10) })).toBe(true);
    expect(await held(row)).toBe(0);
  });

  // Two connections at once: PostgreSQL's case only (PGlite serves one statement at a time).
  if (engine !== 'PostgreSQL') return;
  it('when a write is retried while its first attempt still runs on the server, then the retry waits for it and adds nothing', async () => {
    const row = newRow();
    await journal.append(row, { seq: 1, counters: add(10) });
    const first = new SqlLimitsJournal(await database.openAnother());
    const retry = new SqlLimitsJournal(await database.openAnother());
    // A hand-over sealing the row holds its lock: both attempts wait behind it.
    const holder = await holdLocks(database.db, (tx) =>
      tx.query('select 1 from limits_journal where id = $1 for update', [row.id]),
    );
    const attempts = [first, retry].map((j) => j.append(row, { seq: 2, counters: add(5) }));
    await untilWaitingForLock(database.db, 'update limits_journal', 2);
    await holder.release();
    expect(await Promise.all(attempts)).toEqual([true, true]);
    expect(await held(row)).toBe(15);
  });
});

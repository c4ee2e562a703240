import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from './db.js';
import { openPostgres } from './postgres.js';

const PG_URL = process.env.FLOWLOOM_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/flowloom_test';

// Named statements outlive the call on each pooled connection: later calls must still bind their
// own parameters, on every connection and inside transactions.
describe('PostgreSQL named statements', () => {
  let db: Db;
  const table = `store_named_${process.pid}`;
  beforeAll(async () => {
    db = await openPostgres(PG_URL, { max: 3 });
    await db.exec(`drop table if exists ${table}; create table ${table} (id int primary key, label text)`);
    await db.query(`insert into ${table} select i, 'row ' || i from generate_series(1, 20) i`);
  });
  afterAll(async () => {
    await db.exec(`drop table if exists ${table}`);
    await db.close();
  });

  it('when a named statement runs many times at once, then each run answers for its own parameters', async () => {
    const sql = `select label from ${table} where id in (select unnest($1::int[])) order by id`;
    const runs = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        db.query<{ label: string }>(sql, [[i + 1, 20 - i]], { name: 'store_test_labels' }),
      ),
    );
    runs.forEach((run, i) => {
      const expected = [...new Set([i + 1, 20 - i])].sort((a, b) => a - b).map((n) => `row ${n}`);
      expect(run.rows.map((r) => r.label)).toEqual(expected);
    });
  });

  it('when a named statement runs in a transaction, then it sees that transaction’s writes', async () => {
    const count = `select count(*)::int as n from ${table} where id > $1`;
    const inside = await db.transaction(async (tx) => {
      await tx.query(`insert into ${table} values (21, 'row 21')`);
      return tx.query<{ n: number }>(count, [20], { name: 'store_test_count' });
    });
    expect(inside.rows[0]?.n).toBe(1);
    expect((await db.query<{ n: number }>(count, [19], { name: 'store_test_count' })).rows[0]?.n).toBe(2);
  });
});

import type { Queryable } from '@flowloom/store';
import type { JournalBatch, JournaledCounter, JournalRow, LimitsJournal } from '../ports/limits-journal.js';

/** Counters of a row (a jsonb array of JournaledCounter), one element per key and time it was added. */
const ENTRIES = `select c->>'key' as key, (c->>'value')::numeric as value, (c->>'expiresAt')::bigint as expires_at, n
  from jsonb_array_elements(%s) with ordinality as e(c, n)`;

/**
 * A row's counters and the new ones ($1) as one entry per key: the amounts summed, the expiry of the
 * latest (as the local counter has it). In the statement, so that a hand-over sealing the row in
 * between is seen (the row lock orders the two) and no replica-side read-modify-write is needed.
 */
const MERGED = `(select coalesce(jsonb_agg(jsonb_build_object('key', key, 'value', value, 'expiresAt', expires_at) order by key), '[]'::jsonb)
  from (select key, sum(value) as value, (array_agg(expires_at order by n desc))[1] as expires_at
          from (${ENTRIES.replace('%s', 'limits_journal.counters || $1::jsonb')}) entries
         group by key having sum(value) <> 0) merged)`;

/** The limits journal in the gateway's database (PostgreSQL shared by the replicas, or PGlite). */
export class SqlLimitsJournal implements LimitsJournal {
  constructor(private readonly db: Queryable) {}

  async append(row: JournalRow, counters: readonly JournaledCounter[]): Promise<boolean> {
    if (counters.length === 0) return true;
    if (!row.opened) {
      await this.db.query(
        'insert into limits_journal (id, replica, outage, counters) values ($2, $3, $4, $1::jsonb)',
        [JSON.stringify(counters), row.id, row.replica, row.outage],
      );
      return true;
    }
    // Not an upsert: a row handed over is deleted, and recreating it under its id would make the
    // shared store, which remembers the id as applied, ignore what it holds.
    const { rowCount } = await this.db.query(
      `update limits_journal set counters = ${MERGED} where id = $2 and not sealed`,
      [JSON.stringify(counters), row.id],
    );
    return rowCount > 0;
  }

  async claim(limit: number): Promise<JournalBatch[]> {
    const { rows } = await this.db.query<{
      seq: string;
      id: string;
      replica: string;
      counters: JournaledCounter[];
    }>(
      `update limits_journal set sealed = true
        where id in (select id from limits_journal order by seq limit $1)
        returning seq, id, replica, counters`,
      [limit],
    );
    return rows
      .sort((a, b) => Number(a.seq) - Number(b.seq))
      .map(({ id, replica, counters }) => ({ id, replica, counters }));
  }

  async handed(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    // Only sealed rows: an open one may have taken counts since it was read.
    await this.db.query('delete from limits_journal where sealed and id in (select unnest($1::uuid[]))', [
      [...ids],
    ]);
  }

  async outstanding(exceptOutage: string, now: number): Promise<JournaledCounter[]> {
    // Per key over every row: an early row's entry may have expired while a later one's (the same
    // counter, its expiry pushed on) has not; the counter lives while its latest expiry does.
    const { rows } = await this.db.query<{ key: string; value: string; expires_at: string }>(
      `select key, sum(value)::text as value,
              case when bool_or(expires_at = 0) then '0' else max(expires_at)::text end as expires_at
         from limits_journal j, lateral (${ENTRIES.replace('%s', 'j.counters')}) entries
        where j.outage is distinct from $1
        group by key
       having sum(value) <> 0 and (bool_or(expires_at = 0) or max(expires_at) > $2)`,
      [exceptOutage, now],
    );
    return rows.map((r) => ({ key: r.key, value: Number(r.value), expiresAt: Number(r.expires_at) }));
  }
}

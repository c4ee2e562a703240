import type { Queryable } from '@flowloom/store';
import type {
  JournalBatch,
  JournaledCounter,
  JournalRow,
  JournalWrite,
  LimitsJournal,
} from '../ports/limits-journal.js';

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

/** How long a row handed over is kept (emptied), for retries of its writes: as long as Redis remembers its batch id. */
const HANDED_KEPT = '1 day';

/** The limits journal in the gateway's database (PostgreSQL shared by the replicas, or PGlite). */
export class SqlLimitsJournal implements LimitsJournal {
  constructor(private readonly db: Queryable) {}

  async append(row: JournalRow, write: JournalWrite): Promise<boolean> {
    if (write.counters.length === 0) return true;
    const counters = JSON.stringify(write.counters);
    // Not an upsert: recreating a row handed over under its id would make the shared store, which
    // remembers the id as applied, ignore what it holds. A conflict is a retry whose first attempt
    // created the row.
    const { rowCount } =
      write.seq === 1
        ? await this.db.query(
            `insert into limits_journal (id, replica, outage, counters, written)
             values ($2, $3, $4, $1::jsonb, 1) on conflict (id) do nothing`,
            [counters, row.id, row.replica, row.outage],
          )
        : await this.db.query(
            `update limits_journal set counters = ${MERGED}, written = $3
              where id = $2 and not sealed and written < $3`,
            [counters, row.id, write.seq],
          );
    if (rowCount > 0) return true;
    // Applied already (sealed since, or not), or sealed before it came. A statement of its own, not a
    // subquery of the one above: an earlier attempt still running when it started (whose lock it
    // waited for) committed after its snapshot, and only a new statement sees it.
    const { rows } = await this.db.query<{ written: number }>(
      'select written from limits_journal where id = $1',
      [row.id],
    );
    return (rows[0]?.written ?? 0) >= write.seq;
  }

  async claim(limit: number): Promise<JournalBatch[]> {
    const { rows } = await this.db.query<{
      seq: string;
      id: string;
      replica: string;
      counters: JournaledCounter[];
    }>(
      `update limits_journal set sealed = true
        where id in (select id from limits_journal where handed_at is null order by seq limit $1)
        returning seq, id, replica, counters`,
      [limit],
    );
    return rows
      .sort((a, b) => Number(a.seq) - Number(b.seq))
      .map(({ id, replica, counters }) => ({ id, replica, counters }));
  }

  async handed(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    // Only sealed rows: an open one may have taken counts since it was read. Emptied, not deleted:
    // `written` answers a retry of a write whose reply was lost (see append). Rows handed over long
    // ago go meanwhile.
    await this.db.query(
      `with forgotten as (delete from limits_journal where handed_at < now() - interval '${HANDED_KEPT}')
       update limits_journal set counters = '[]'::jsonb, handed_at = now()
        where sealed and handed_at is null and id in (select unnest($1::uuid[]))`,
      [[...ids]],
    );
  }

  async outstanding(exceptOutage: string, now: number): Promise<JournaledCounter[]> {
    // Per key over every row: an early row's entry may have expired while a later one's (the same
    // counter, its expiry pushed on) has not; the counter lives while its latest expiry does.
    const { rows } = await this.db.query<{ key: string; value: string; expires_at: string }>(
      `select key, sum(value)::text as value,
              case when bool_or(expires_at = 0) then '0' else max(expires_at)::text end as expires_at
         from limits_journal j, lateral (${ENTRIES.replace('%s', 'j.counters')}) entries
        where j.outage is distinct from $1 and j.handed_at is null
        group by key
       having sum(value) <> 0 and (bool_or(expires_at = 0) or max(expires_at) > $2)`,
      [exceptOutage, now],
    );
    return rows.map((r) => ({ key: r.key, value: Number(r.value), expiresAt: Number(r.expires_at) }));
  }
}

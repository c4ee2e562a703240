import { randomUUID } from 'node:crypto';
import type { Queryable } from '@flowloom/store';
import type { JournalBatch, JournaledCounter, LimitsJournal } from '../ports/limits-journal.js';

/** The limits journal in the gateway's database (PostgreSQL shared by the replicas, or PGlite). */
export class SqlLimitsJournal implements LimitsJournal {
  constructor(private readonly db: Queryable) {}

  async append(replica: string, counters: readonly JournaledCounter[]): Promise<void> {
    if (counters.length === 0) return;
    await this.db.query('insert into limits_journal (id, replica, counters) values ($1, $2, $3::jsonb)', [
      randomUUID(),
      replica,
      JSON.stringify(counters),
    ]);
  }

  async pending(limit: number): Promise<JournalBatch[]> {
    const { rows } = await this.db.query<{ id: string; replica: string; counters: JournaledCounter[] }>(
      'select id, replica, counters from limits_journal order by seq limit $1',
      [limit],
    );
    return rows;
  }

  async handed(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query('delete from limits_journal where id in (select unnest($1::uuid[]))', [[...ids]]);
  }
}

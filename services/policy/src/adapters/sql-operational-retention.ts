import type { Db } from '@flowloom/store';
import type { OperationalRetention, PrunedRows } from '../ports/operational-retention.js';

/**
 * Rows deleted per statement: short transactions that never hold the decision inserts back for long
 * (in `flowloom up` the same embedded database serves every request).
 */
const SLICE = 5_000;

/** Deletes old rows of the tables keyed by time, in PostgreSQL or PGlite (the same SQL). */
export class SqlOperationalRetention implements OperationalRetention {
  constructor(
    private readonly db: Db,
    private readonly slice = SLICE,
  ) {}

  async pruneBefore(cutoff: Date): Promise<PrunedRows> {
    return {
      decisions: await this.prune('policy_decisions', 'id', cutoff),
      interventions: await this.prune('policy_interventions', 'id', cutoff),
      requests: await this.prune('policy_requests', 'request_id', cutoff),
    };
  }

  private async prune(table: string, key: string, cutoff: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const { rowCount } = await this.db.query(
        `delete from ${table} where ${key} in (select ${key} from ${table} where at < $1 limit ${this.slice})`,
        [cutoff.toISOString()],
      );
      total += rowCount;
      if (rowCount < this.slice) return total;
    }
  }
}

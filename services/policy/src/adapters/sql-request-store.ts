import type { Db } from '@flowloom/store';
import type { RebuiltRequest } from '../domain/request-facts.js';
import type { RequestStore, UndecidedRequests } from '../ports/request-store.js';

const ROWS_PER_STATEMENT = 1000;

/**
 * A decision is made before its request ends: one from this long before the window may still be the
 * decision of a request that ended in it (a long stream).
 */
const DECISION_LEAD = "interval '1 day'";

/** Requests in PostgreSQL or PGlite (the same SQL), next to the decisions they are matched with. */
export class SqlRequestStore implements RequestStore {
  constructor(private readonly db: Db) {}

  async saveMany(requests: readonly RebuiltRequest[]): Promise<void> {
    for (let start = 0; start < requests.length; start += ROWS_PER_STATEMENT) {
      const chunk = requests.slice(start, start + ROWS_PER_STATEMENT);
      // Two parameters per statement, as the decision store does: the short columns as one JSON array
      // and the inputs (JSON never holds a raw newline) as one joined string.
      const columns = JSON.stringify(chunk.map((r) => ({ rq: r.requestId, at: r.at, an: r.answered })));
      await this.db.query(
        `insert into policy_requests (request_id, at, answered, input)
         select u.rq, u.at::timestamptz, u.an, u.input
           from rows from (
             json_to_recordset($1::json) as (rq text, at text, an boolean),
             unnest(string_to_array($2, E'\\n'))
           ) as u(rq, at, an, input)
         on conflict (request_id) do nothing`,
        [columns, chunk.map((r) => JSON.stringify(r.input)).join('\n')],
      );
    }
  }

  async undecidedSince(since: Date, limit: number): Promise<UndecidedRequests> {
    const undecided = `from policy_requests r
      where r.at >= $1 and not exists (
        select 1 from policy_decisions d where d.request_id = r.request_id and d.at >= $1::timestamptz - ${DECISION_LEAD})`;
    const found = await this.db.query<{ request_id: string; at: unknown; answered: boolean; input: string }>(
      `select r.request_id, r.at, r.answered, r.input ${undecided} order by r.at desc, r.request_id desc limit $2`,
      [since, limit],
    );
    let inWindow = found.rows.length;
    if (found.rows.length === limit) {
      const counted = await this.db.query<{ n: unknown }>(`select count(*) as n ${undecided}`, [since]);
      inWindow = Math.max(inWindow, Number(counted.rows[0]?.n ?? 0));
    }
    const records = found.rows.reverse().map((r) => ({
      requestId: r.request_id,
      at: (r.at instanceof Date ? r.at : new Date(String(r.at))).toISOString(),
      answered: r.answered,
      input: JSON.parse(r.input) as Record<string, unknown>,
    }));
    return { records, inWindow };
  }
}

import type { DecisionRecord, Intervention } from '@flowloom/contracts';
import type { Db, SqlParam } from '@flowloom/store';
import type {
  DecisionFilter,
  DecisionStore,
  RecordedInput,
  RecordedInputs,
} from '../ports/decision-store.js';

const parse = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;
const iso = (v: unknown): string => (v instanceof Date ? v : new Date(String(v))).toISOString();
const ROWS_PER_STATEMENT = 1000;

/**
 * Decision records in PostgreSQL (or PGlite), one row per decision id. The record is kept as JSON
 * text next to the columns that are queried: far cheaper to insert than jsonb, which matters at one
 * row per request.
 */
export class SqlDecisionStore implements DecisionStore {
  constructor(private readonly db: Db) {}

  save(record: DecisionRecord): Promise<void> {
    return this.saveMany([record]);
  }

  async saveMany(records: readonly DecisionRecord[]): Promise<void> {
    for (let start = 0; start < records.length; start += ROWS_PER_STATEMENT) {
      const chunk = records.slice(start, start + ROWS_PER_STATEMENT);
      // Two parameters per statement, whatever the rows: the short columns as one JSON array, parsed
      // once by json_to_recordset, and the records (JSON never holds a raw newline) as one joined
      // string. Eleven parameters per row cost more to bind and plan than the insert itself on PGlite.
      const columns = JSON.stringify(
        chunk.map((r) => ({
          id: r.decisionId,
          rq: r.requestId,
          at: new Date(r.at).toISOString(),
          k: r.keyId ?? null,
          j: r.job ?? null,
          po: r.policy ?? null,
          v: r.verdict,
          iv: r.intendedVerdict,
          en: r.enforced,
          ph: r.phase === 'post_call' ? r.phase : null,
        })),
      );
      await this.db.query(
        `insert into policy_decisions (id, request_id, at, key_id, job, policy, verdict, intended_verdict, enforced, phase, record)
         select u.id, u.rq, u.at::timestamptz, u.k, u.j, u.po, u.v, u.iv, u.en, u.ph, u.record
           from rows from (
             json_to_recordset($1::json) as (id text, rq text, at text, k text, j text, po text, v text, iv text,
                                             en boolean, ph text),
             unnest(string_to_array($2, E'\\n'))
           ) as u(id, rq, at, k, j, po, v, iv, en, ph, record)
         on conflict (id) do nothing`,
        [columns, chunk.map((r) => JSON.stringify(r)).join('\n')],
      );
    }
  }

  async get(id: string): Promise<DecisionRecord | undefined> {
    const found = await this.db.query<{ record: unknown }>(
      'select record from policy_decisions where id = $1',
      [id],
    );
    return found.rows[0] ? parse<DecisionRecord>(found.rows[0].record) : undefined;
  }

  async list(filter: DecisionFilter): Promise<DecisionRecord[]> {
    const where: string[] = [];
    const params: SqlParam[] = [];
    const add = (column: string, value: SqlParam, op = '='): void => {
      params.push(value);
      where.push(`${column} ${op} $${params.length}`);
    };
    if (filter.job !== undefined) add('job', filter.job);
    if (filter.keyId !== undefined) add('key_id', filter.keyId);
    if (filter.policy !== undefined) add('policy', filter.policy);
    if (filter.since !== undefined) add('at', filter.since, '>=');
    if (filter.verdict !== undefined) {
      params.push(filter.verdict);
      where.push(`(verdict = $${params.length} or intended_verdict = $${params.length})`);
    }
    params.push(filter.limit);
    const found = await this.db.query<{ record: unknown }>(
      `select record from policy_decisions ${where.length ? `where ${where.join(' and ')}` : ''}
       order by at desc, id desc limit $${params.length}`,
      params,
    );
    return found.rows.map((r) => parse<DecisionRecord>(r.record));
  }

  saveIntervention(eventId: string, at: Date, intervention: Intervention): Promise<void> {
    return this.saveInterventions([{ eventId, at, intervention }]);
  }

  async saveInterventions(
    entries: ReadonlyArray<{ eventId: string; at: Date; intervention: Intervention }>,
  ): Promise<void> {
    for (let start = 0; start < entries.length; start += ROWS_PER_STATEMENT) {
      const chunk = entries.slice(start, start + ROWS_PER_STATEMENT);
      const params: SqlParam[] = [];
      const rows = chunk.map((e) => {
        const at = params.length;
        params.push(
          e.eventId,
          e.intervention.decisionId,
          e.intervention.job ?? null,
          e.at,
          JSON.stringify(e.intervention),
        );
        return `($${at + 1}, $${at + 2}, $${at + 3}, $${at + 4}, $${at + 5})`;
      });
      await this.db.query(
        `insert into policy_interventions (id, decision_id, job, at, record) values ${rows.join(', ')}
         on conflict (id) do nothing`,
        params,
      );
    }
  }

  async interventions(
    job: string,
    after: string | undefined,
    limit: number,
  ): Promise<Array<Intervention & { at: string }>> {
    type Found = { decision_id: string; at: unknown; record: unknown };
    const read = (r: Found) => ({ ...parse<Intervention>(r.record), at: iso(r.at) });
    const page = await this.db.query<Found>(
      `select decision_id, at, record from policy_interventions where job = $1 and decision_id > $2
       order by decision_id, id limit $3`,
      [job, after ?? '', limit],
    );
    const last = page.rows.at(-1);
    if (!last || page.rows.length < limit) return page.rows.map(read);
    // The rest of the last decision's interventions, so the next page can start after it.
    const rest = await this.db.query<Found>(
      `select decision_id, at, record from policy_interventions where job = $1 and decision_id = $2
       order by id offset $3`,
      [job, last.decision_id, page.rows.filter((r) => r.decision_id === last.decision_id).length],
    );
    return [...page.rows, ...rest.rows].map(read);
  }

  async inputsSince(since: Date, limit: number): Promise<RecordedInputs> {
    // The newest `limit`: a replay is about the traffic of late, not the start of the window. One
    // record per request: a post-call decision's input is its pre-call record's, answer included.
    const found = await this.db.query<{ id: string; at: unknown; record: unknown }>(
      'select id, at, record from policy_decisions where at >= $1 and phase is null order by at desc, id desc limit $2',
      [since, limit],
    );
    let inWindow = found.rows.length;
    if (found.rows.length === limit) {
      const counted = await this.db.query<{ n: unknown }>(
        'select count(*) as n from policy_decisions where at >= $1 and phase is null',
        [since],
      );
      inWindow = Math.max(inWindow, Number(counted.rows[0]?.n ?? 0));
    }
    const records: RecordedInput[] = [];
    let withoutInput = 0;
    for (let k = found.rows.length - 1; k >= 0; k--) {
      const r = found.rows[k]!;
      const record = parse<DecisionRecord>(r.record);
      if (!record.input) {
        withoutInput++;
        continue;
      }
      const read = new Set<string>();
      for (const e of record.evaluations ?? []) for (const path of Object.keys(e.inputs)) read.add(path);
      records.push({
        id: r.id,
        at: iso(r.at),
        input: record.input,
        read: [...read],
        ...(record.phase ? { phase: record.phase } : {}),
      });
    }
    return { records, inWindow, withoutInput };
  }

  async close(): Promise<void> {}
}

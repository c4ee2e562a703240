import type { DecisionRecord, Intervention } from '@flowloom/contracts';
import type { Db, Row, SqlParam } from '@flowloom/store';
import type { DecisionFilter, DecisionStore } from '../ports/decision-store.js';

const asRecord = (v: unknown): DecisionRecord =>
  (typeof v === 'string' ? JSON.parse(v) : v) as DecisionRecord;

/** Decision records in PostgreSQL (or PGlite), one row per decision id. */
export class SqlDecisionStore implements DecisionStore {
  constructor(private readonly db: Db) {}

  async save(record: DecisionRecord): Promise<void> {
    await this.db.query(
      `insert into policy_decisions (id, request_id, at, key_id, job, session, policy, version, mode, verdict, intended_verdict, enforced, record)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       on conflict (id) do nothing`,
      [
        record.decisionId,
        record.requestId,
        new Date(record.at),
        record.keyId ?? null,
        record.job ?? null,
        record.session ?? null,
        record.policy ?? null,
        record.version ?? null,
        record.mode ?? null,
        record.verdict,
        record.intendedVerdict,
        record.enforced,
        JSON.stringify(record),
      ],
    );
  }

  async get(id: string): Promise<DecisionRecord | undefined> {
    const found = await this.db.query<{ record: unknown }>(
      'select record from policy_decisions where id = $1',
      [id],
    );
    return found.rows[0] ? asRecord(found.rows[0].record) : undefined;
  }

  async list(filter: DecisionFilter): Promise<DecisionRecord[]> {
    const where: string[] = [];
    const params: SqlParam[] = [];
    const add = (sql: string, value: SqlParam): void => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.job !== undefined) add('job = ?', filter.job);
    if (filter.keyId !== undefined) add('key_id = ?', filter.keyId);
    if (filter.policy !== undefined) add('policy = ?', filter.policy);
    if (filter.verdict !== undefined) {
      params.push(filter.verdict);
      where.push(`(verdict = $${params.length} or intended_verdict = $${params.length})`);
    }
    if (filter.since !== undefined) add('at >= ?', filter.since);
    params.push(filter.limit);
    const sql = `select record from policy_decisions ${where.length ? `where ${where.join(' and ')}` : ''} order by at desc, id desc limit $${params.length}`;
    const found = await this.db.query<Row>(sql, params);
    return found.rows.map((r) => asRecord(r.record));
  }

  async saveIntervention(eventId: string, at: Date, intervention: Intervention): Promise<void> {
    await this.db.query(
      `insert into policy_interventions (id, decision_id, job, at, record) values ($1, $2, $3, $4, $5)
       on conflict (id) do nothing`,
      [eventId, intervention.decisionId, intervention.job ?? null, at, JSON.stringify(intervention)],
    );
  }

  async interventions(
    job: string,
    after: string | undefined,
    limit: number,
  ): Promise<Array<Intervention & { at: string }>> {
    type Found = { decision_id: string; at: Date | string; record: unknown };
    const read = (r: Found) => ({
      ...((typeof r.record === 'string' ? JSON.parse(r.record) : r.record) as Intervention),
      at: (r.at instanceof Date ? r.at : new Date(String(r.at))).toISOString(),
    });
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

  async inputsSince(
    since: Date,
    limit: number,
  ): Promise<Array<{ id: string; at: string; input: Record<string, unknown> }>> {
    const found = await this.db.query<{ id: string; at: Date; input: unknown }>(
      `select id, at, record -> 'input' as input from policy_decisions
       where at >= $1 and record ? 'input' order by at, id limit $2`,
      [since, limit],
    );
    return found.rows.map((r) => ({
      id: r.id,
      at: (r.at instanceof Date ? r.at : new Date(String(r.at))).toISOString(),
      input: (typeof r.input === 'string' ? JSON.parse(r.input) : r.input) as Record<string, unknown>,
    }));
  }
}

import type { CloudEvent } from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import type { PolicyDocument } from '@flowloom/policy-engine';
import type { Db, Queryable, Row } from '@flowloom/store';
import type {
  CanaryBy,
  Deployment,
  KeyAncestor,
  KeyIdentity,
  PolicyVersion,
  Promotion,
} from '../domain/model.js';
import type { NewDeployment, NewVersion, PolicyRepository } from '../ports/policy-repository.js';
import { appendPolicyEvents } from './sql-event-relay.js';

const VERSION_COLUMNS =
  'name, version, seq, document, source, format, author, author_key, author_lineage, message, previous, created_at';
const DEPLOYMENT_COLUMNS =
  'revision, name, stable, candidate, candidate_mode, percent, by_subject, reason, actor, promotion_id, created_at';
const PROMOTION_COLUMNS =
  'id, name, version, mode, percent, by_subject, author, requested_by, requested_at, status, approved_by, approver, approved_at, revision';

const asDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const asText = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const asNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const asJson = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

function toVersion(r: Row): PolicyVersion {
  return {
    name: String(r.name),
    version: String(r.version),
    seq: Number(r.seq),
    document: asJson<PolicyDocument>(r.document),
    source: String(r.source),
    format: r.format === 'json' ? 'json' : 'yaml',
    author: String(r.author),
    authorKey: asText(r.author_key),
    authorLineage: r.author_lineage ? asJson<KeyAncestor[]>(r.author_lineage) : null,
    message: String(r.message),
    previous: asText(r.previous),
    createdAt: asDate(r.created_at),
  };
}

function toDeployment(r: Row): Deployment {
  const mode = asText(r.candidate_mode);
  const by = asText(r.by_subject);
  return {
    revision: Number(r.revision),
    name: String(r.name),
    stable: asText(r.stable),
    candidate: asText(r.candidate),
    candidateMode: mode === 'shadow' || mode === 'canary' ? mode : null,
    percent: asNumber(r.percent),
    by: by === 'job' || by === 'key' ? by : null,
    reason: String(r.reason),
    actor: String(r.actor),
    promotionId: asText(r.promotion_id),
    createdAt: asDate(r.created_at),
  };
}

function toPromotion(r: Row): Promotion {
  const status = String(r.status);
  const mode = String(r.mode);
  return {
    id: String(r.id),
    name: String(r.name),
    version: String(r.version),
    mode: mode === 'canary' || mode === 'enforce' ? mode : 'shadow',
    percent: asNumber(r.percent),
    by: (asText(r.by_subject) as CanaryBy | null) ?? null,
    author: String(r.author),
    requestedBy: String(r.requested_by),
    requestedAt: asDate(r.requested_at),
    status: status === 'applied' || status === 'superseded' ? status : 'pending',
    approvedBy: asText(r.approved_by),
    approver: r.approver ? asJson<KeyIdentity>(r.approver) : null,
    approvedAt: r.approved_at ? asDate(r.approved_at) : null,
    revision: asNumber(r.revision),
  };
}

/** Changes of one policy are serialized, so sequence numbers and deployments never race. */
async function lockPolicy(tx: Queryable, name: string): Promise<void> {
  await tx.query('select pg_advisory_xact_lock(7412, hashtext($1))', [name]);
}

/** Policies in PostgreSQL (or PGlite): versions are only ever inserted, deployments appended. */
export class SqlPolicyRepository implements PolicyRepository {
  constructor(
    private readonly db: Db,
    private readonly onCommit: () => void = () => {},
  ) {}

  async insertVersion(
    version: NewVersion,
    events: (stored: PolicyVersion) => CloudEvent[],
  ): Promise<{ created: boolean; version: PolicyVersion }> {
    const result = await this.db.transaction(async (tx) => {
      await lockPolicy(tx, version.name);
      const existing = await tx.query(
        `select ${VERSION_COLUMNS} from policy_versions where name = $1 and version = $2`,
        [version.name, version.version],
      );
      if (existing.rows[0]) return { created: false, version: toVersion(existing.rows[0]) };
      const latest = await tx.query<{ seq: number; version: string }>(
        'select seq, version from policy_versions where name = $1 order by seq desc limit 1',
        [version.name],
      );
      const previous = latest.rows[0];
      const inserted = await tx.query(
        `insert into policy_versions (name, version, seq, document, source, format, author, author_key, author_lineage, message, previous)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning ${VERSION_COLUMNS}`,
        [
          version.name,
          version.version,
          previous ? Number(previous.seq) + 1 : 1,
          JSON.stringify(version.document),
          version.source,
          version.format,
          version.author,
          version.authorKey,
          version.authorLineage ? JSON.stringify(version.authorLineage) : null,
          version.message,
          previous?.version ?? null,
        ],
      );
      const stored = toVersion(inserted.rows[0]!);
      await appendPolicyEvents(tx, events(stored));
      return { created: true, version: stored };
    });
    if (result.created) this.onCommit();
    return result;
  }

  async getVersion(name: string, idOrPrefix: string): Promise<PolicyVersion | undefined> {
    const prefix = idOrPrefix.toLowerCase();
    if (!/^[0-9a-f]{7,64}$/.test(prefix)) return undefined;
    const found = await this.db.query(
      `select ${VERSION_COLUMNS} from policy_versions where name = $1 and version like $2 order by seq limit 2`,
      [name, `${prefix}%`],
    );
    if (found.rows.length > 1)
      throw new AppError(
        'invalid_request',
        `Version prefix ${idOrPrefix} is ambiguous; give more characters.`,
        {
          param: 'version',
        },
      );
    return found.rows[0] ? toVersion(found.rows[0]) : undefined;
  }

  async policiesWithVersion(idOrPrefix: string): Promise<string[]> {
    const prefix = idOrPrefix.toLowerCase();
    if (!/^[0-9a-f]{7,64}$/.test(prefix)) return [];
    const found = await this.db.query<{ name: string }>(
      'select distinct name from policy_versions where version like $1 order by name limit 2',
      [`${prefix}%`],
    );
    return found.rows.map((r) => r.name);
  }

  async latestVersion(name: string): Promise<PolicyVersion | undefined> {
    const found = await this.db.query(
      `select ${VERSION_COLUMNS} from policy_versions where name = $1 order by seq desc limit 1`,
      [name],
    );
    return found.rows[0] ? toVersion(found.rows[0]) : undefined;
  }

  async listVersions(name: string): Promise<PolicyVersion[]> {
    const found = await this.db.query(
      `select ${VERSION_COLUMNS} from policy_versions where name = $1 order by seq desc`,
      [name],
    );
    return found.rows.map(toVersion);
  }

  async listPolicies(): Promise<string[]> {
    const found = await this.db.query<{ name: string }>(
      'select distinct name from policy_versions order by name',
    );
    return found.rows.map((r) => r.name);
  }

  async currentDeployment(name: string): Promise<Deployment | undefined> {
    const found = await this.db.query(
      `select ${DEPLOYMENT_COLUMNS} from policy_deployments where name = $1 order by revision desc limit 1`,
      [name],
    );
    return found.rows[0] ? toDeployment(found.rows[0]) : undefined;
  }

  async wasStable(name: string, version: string): Promise<boolean> {
    const found = await this.db.query(
      'select 1 from policy_deployments where name = $1 and stable = $2 limit 1',
      [name, version],
    );
    return found.rows.length > 0;
  }

  async deploymentHistory(name: string, limit: number): Promise<Deployment[]> {
    const found = await this.db.query(
      `select ${DEPLOYMENT_COLUMNS} from policy_deployments where name = $1 order by revision desc limit $2`,
      [name, limit],
    );
    return found.rows.map(toDeployment);
  }

  async deploy(
    deployment: NewDeployment,
    events: (applied: Deployment) => CloudEvent[],
    approval?: { promotionId: string; approvedBy: string; approver: KeyIdentity },
  ): Promise<Deployment> {
    const applied = await this.db.transaction(async (tx) => {
      await lockPolicy(tx, deployment.name);
      const inserted = await tx.query(
        `insert into policy_deployments (name, stable, candidate, candidate_mode, percent, by_subject, reason, actor, promotion_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning ${DEPLOYMENT_COLUMNS}`,
        [
          deployment.name,
          deployment.stable,
          deployment.candidate,
          deployment.candidateMode,
          deployment.percent,
          deployment.by,
          deployment.reason,
          deployment.actor,
          deployment.promotionId,
        ],
      );
      const row = toDeployment(inserted.rows[0]!);
      if (approval) {
        const updated = await tx.query(
          `update policy_promotions set status = 'applied', approved_by = $2, approver = $4, approved_at = now(), revision = $3
           where id = $1 and status = 'pending'`,
          [approval.promotionId, approval.approvedBy, row.revision, JSON.stringify(approval.approver)],
        );
        if (updated.rowCount !== 1)
          throw new AppError('conflict', `Promotion ${approval.promotionId} is no longer pending.`);
        // Older requests for the same policy are overtaken by this one.
        await tx.query(
          `update policy_promotions set status = 'superseded' where name = $1 and status = 'pending' and requested_at <= (select requested_at from policy_promotions where id = $2)`,
          [deployment.name, approval.promotionId],
        );
      }
      await appendPolicyEvents(tx, events(row));
      return row;
    });
    this.onCommit();
    return applied;
  }

  async activeDeployments(): Promise<{ revision: number; deployments: Deployment[] }> {
    const found = await this.db.query(
      `select distinct on (name) ${DEPLOYMENT_COLUMNS} from policy_deployments order by name, revision desc`,
    );
    const deployments = found.rows.map(toDeployment);
    const revision = deployments.reduce((max, d) => Math.max(max, d.revision), 0);
    return { revision, deployments };
  }

  async revision(): Promise<number> {
    const found = await this.db.query<{ revision: number | null }>(
      'select max(revision) as revision from policy_deployments',
    );
    return Number(found.rows[0]?.revision ?? 0);
  }

  async createPromotion(promotion: Promotion, events: CloudEvent[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `insert into policy_promotions (id, name, version, mode, percent, by_subject, author, requested_by, requested_at, status)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')`,
        [
          promotion.id,
          promotion.name,
          promotion.version,
          promotion.mode,
          promotion.percent,
          promotion.by,
          promotion.author,
          promotion.requestedBy,
          promotion.requestedAt,
        ],
      );
      await appendPolicyEvents(tx, events);
    });
    this.onCommit();
  }

  async getPromotion(id: string): Promise<Promotion | undefined> {
    const found = await this.db.query(`select ${PROMOTION_COLUMNS} from policy_promotions where id = $1`, [
      id,
    ]);
    return found.rows[0] ? toPromotion(found.rows[0]) : undefined;
  }

  async listPromotions(name: string, limit: number): Promise<Promotion[]> {
    const found = await this.db.query(
      `select ${PROMOTION_COLUMNS} from policy_promotions where name = $1 order by requested_at desc limit $2`,
      [name, limit],
    );
    return found.rows.map(toPromotion);
  }
}

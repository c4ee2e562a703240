import type { Db, SqlParam } from '@flowloom/store';
import type { KeyAncestor, KeyRecord, KeyRole, KeySuspension } from '../domain/keys.js';
import type { KeyStore, NewKey } from '../ports/key-store.js';

interface KeyRow extends Record<string, unknown> {
  id: string;
  hint: string;
  name: string;
  owner: string;
  project: string | null;
  team: string | null;
  job: string | null;
  policy: string | null;
  role: KeyRole;
  models: string[] | null;
  created_at: Date | string;
  expires_at: Date | string | null;
  revoked_at: Date | string | null;
  rotated_from: string | null;
  created_by: string | null;
  rotated_by: string | null;
  suspended_at: Date | string | null;
  suspension: KeySuspension | string | null;
}

const COLUMNS =
  'id, hint, name, owner, project, team, job, policy, role, models, created_at, expires_at, revoked_at, rotated_from, created_by, rotated_by, suspended_at, suspension';

const date = (v: Date | string | null): Date | null =>
  v === null ? null : v instanceof Date ? v : new Date(v);

function toRecord(row: KeyRow): KeyRecord {
  return {
    id: row.id,
    hint: row.hint,
    name: row.name,
    owner: row.owner,
    project: row.project,
    team: row.team,
    job: row.job,
    policy: row.policy,
    role: row.role,
    models: row.models,
    createdAt: date(row.created_at) ?? new Date(0),
    expiresAt: date(row.expires_at),
    revokedAt: date(row.revoked_at),
    rotatedFrom: row.rotated_from,
    createdBy: row.created_by,
    rotatedBy: row.rotated_by,
    suspendedAt: date(row.suspended_at),
    suspension:
      typeof row.suspension === 'string' ? (JSON.parse(row.suspension) as KeySuspension) : row.suspension,
  };
}

/**
 * The advisory lock bootstraps take, then the api_keys table's oid (so other schemas of the database are
 * not serialised). 7411 is held by migrations, 7412 by the outbox relay, the policy repository and the
 * ledger's appends.
 */
const BOOTSTRAP_LOCK = 7413;

const INSERT_KEY = `insert into api_keys (id, secret_hash, hint, name, owner, project, team, role, models, expires_at, rotated_from, job, created_by, rotated_by, policy)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`;

const insertParams = (key: NewKey): SqlParam[] => [
  key.id,
  key.secretHash,
  key.hint,
  key.name,
  key.owner,
  key.project,
  key.team,
  key.role,
  key.models,
  key.expiresAt,
  key.rotatedFrom,
  key.job,
  key.createdBy,
  key.rotatedBy,
  key.policy ?? null,
];

/**
 * Walks creators, rotations and rotators back from a key (depth-capped: links only point at older
 * keys, so there is no cycle, but a bound costs nothing).
 */
const LINEAGE = `with recursive chain (id, depth) as (
    select p.id, 1 from api_keys k, unnest(array[k.created_by, k.rotated_from, k.rotated_by]) as p (id)
     where k.id = $1 and p.id is not null
  union
    select p.id, c.depth + 1 from chain c join api_keys k on k.id = c.id,
           unnest(array[k.created_by, k.rotated_from, k.rotated_by]) as p (id)
     where p.id is not null and c.depth < 64
  )
  select k.id, k.owner, k.created_by is null as root, min(c.depth) as depth
    from chain c join api_keys k on k.id = c.id
   where k.id <> $1
   group by k.id, k.owner, k.created_by
   order by depth, k.id`;

const COUNT_ADMINS = `select count(*)::int as n from api_keys where role = 'admin' and revoked_at is null`;

/** API keys in PostgreSQL or PGlite: the same SQL serves both. */
export class SqlKeyStore implements KeyStore {
  constructor(private readonly db: Db) {}

  async insert(key: NewKey): Promise<KeyRecord> {
    const { rows } = await this.db.query<KeyRow>(`${INSERT_KEY} returning ${COLUMNS}`, insertParams(key));
    return toRecord(rows[0]!);
  }

  async findByHash(secretHash: string): Promise<KeyRecord | undefined> {
    const { rows } = await this.db.query<KeyRow>(`select ${COLUMNS} from api_keys where secret_hash = $1`, [
      secretHash,
    ]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async findById(id: string): Promise<KeyRecord | undefined> {
    const { rows } = await this.db.query<KeyRow>(`select ${COLUMNS} from api_keys where id = $1`, [id]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(filter: { project?: string; includeRevoked?: boolean } = {}): Promise<KeyRecord[]> {
    const { rows } = await this.db.query<KeyRow>(
      `select ${COLUMNS} from api_keys
       where ($1::text is null or project = $1) and ($2::boolean or revoked_at is null)
       order by created_at, id`,
      [filter.project ?? null, filter.includeRevoked ?? false],
    );
    return rows.map(toRecord);
  }

  async revoke(id: string, at: Date): Promise<KeyRecord | undefined> {
    const { rows } = await this.db.query<KeyRow>(
      `update api_keys set revoked_at = coalesce(revoked_at, $2) where id = $1 returning ${COLUMNS}`,
      [id, at],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async suspend(id: string, at: Date, suspension: KeySuspension): Promise<KeyRecord | undefined> {
    // A suspended key keeps what suspended it first; a revoked one is not suspended (it is gone).
    const { rows } = await this.db.query<KeyRow>(
      `update api_keys set suspended_at = coalesce(suspended_at, $2),
              suspension = case when suspended_at is null then $3::jsonb else suspension end
        where id = $1 and revoked_at is null returning ${COLUMNS}`,
      [id, at, JSON.stringify(suspension)],
    );
    return rows[0] ? toRecord(rows[0]) : this.findById(id);
  }

  async resume(id: string): Promise<KeyRecord | undefined> {
    const { rows } = await this.db.query<KeyRow>(
      `update api_keys set suspended_at = null, suspension = null where id = $1 returning ${COLUMNS}`,
      [id],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async expire(id: string, at: Date): Promise<KeyRecord | undefined> {
    const { rows } = await this.db.query<KeyRow>(
      `update api_keys set expires_at = least(coalesce(expires_at, $2), $2) where id = $1 returning ${COLUMNS}`,
      [id, at],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async countAdmins(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(COUNT_ADMINS);
    return rows[0]?.n ?? 0;
  }

  async lineage(id: string): Promise<KeyAncestor[]> {
    const { rows } = await this.db.query<{ id: string; owner: string; root: boolean }>(LINEAGE, [id]);
    return rows.map((r) => ({ keyId: r.id, owner: r.owner, root: r.root }));
  }

  insertBootstrap(key: NewKey, options: { onlyWhenNoAdmin: boolean }): Promise<KeyRecord | undefined> {
    return this.db.transaction(async (tx) => {
      // Without the lock, two replicas could both find no admin and both generate one; `on conflict`
      // alone covers a configured key, since its hash is the same on every replica.
      await tx.query(`select pg_advisory_xact_lock(($1::bigint << 32) | 'api_keys'::regclass::oid::bigint)`, [
        BOOTSTRAP_LOCK,
      ]);
      if (options.onlyWhenNoAdmin) {
        const { rows } = await tx.query<{ n: number }>(COUNT_ADMINS);
        if ((rows[0]?.n ?? 0) > 0) return undefined;
      }
      const { rows } = await tx.query<KeyRow>(
        `${INSERT_KEY} on conflict (secret_hash) do nothing returning ${COLUMNS}`,
        insertParams(key),
      );
      return rows[0] ? toRecord(rows[0]) : undefined;
    });
  }
}

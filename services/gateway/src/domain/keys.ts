import { createHash, randomBytes } from 'node:crypto';
import { AppError } from '@flowloom/errors';

export const KEY_PREFIX = 'flk_';

export type KeyRole = 'admin' | 'member';

/** What the gateway stores about a virtual key; the secret itself is never stored, only its hash. */
export interface KeyRecord {
  id: string;
  name: string;
  owner: string;
  project: string | null;
  team: string | null;
  /** A key issued for one job (`flowloom run`): every request it makes is tagged with that job. */
  job: string | null;
  /**
   * A job policy (`flowloom run --policy`): the policy version evaluated for this key's requests in
   * addition to the active bundle. It can only add restrictions, never lift one.
   */
  policy?: string | null;
  role: KeyRole;
  /** Models (names or `*` patterns) the key may use; null means any. */
  models: string[] | null;
  /** The first characters of the secret, for recognizing a key in lists. */
  hint: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  /** The key this one replaced by rotation. */
  rotatedFrom: string | null;
  /**
   * The admin key that created this one (a rotation keeps the old key's creator); null for the
   * bootstrap admin key, the root every other key descends from, and for keys older than lineage.
   */
  createdBy: string | null;
  /** The admin key that rotated the old key into this one (and so was handed this secret). */
  rotatedBy: string | null;
  /** Suspended keys are refused until an admin resumes them (revocation is for good). */
  suspendedAt: Date | null;
  suspension: KeySuspension | null;
}

/** What suspended a key: a policy decision (or an admin), and why. */
export interface KeySuspension {
  /** Who: `policy/NAME@VERSION rule RULE`, or an admin key. */
  by: string;
  reason: string;
  decisionId?: string;
  policy?: string;
  version?: string;
  rule?: string;
}

/**
 * A key whose holder could have known another key's secret: its creator, the key it was rotated
 * from, the admin key that rotated it, and theirs in turn. `root` marks a key without a creator.
 */
export interface KeyAncestor {
  keyId: string;
  owner: string;
  root: boolean;
}

/** A new secret: `flk_` and 32 random bytes, base64url. */
export function generateKeySecret(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function keyHint(secret: string): string {
  return `${secret.slice(0, 8)}…`;
}

/** Throws the reason a key cannot be used now, in terms a caller can act on. */
export function assertKeyUsable(key: KeyRecord, now: Date): void {
  if (key.revokedAt && key.revokedAt <= now) {
    throw new AppError('key_revoked', `API key ${key.hint} was revoked. Ask its owner for a new key.`);
  }
  if (key.suspendedAt && key.suspendedAt <= now) {
    const s = key.suspension;
    const what = s?.decisionId
      ? `by decision ${s.decisionId} (${s.by}: ${s.reason})`
      : `by ${s?.by ?? 'an admin'}`;
    throw new AppError(
      'key_suspended',
      `API key ${key.hint} is suspended ${what}. An admin can resume it: POST /api/v1/keys/${key.id}/resume (flowloom keys resume ${key.id}).`,
      { details: { keyId: key.id, ...(s?.decisionId ? { decisionId: s.decisionId } : {}) } },
    );
  }
  if (key.expiresAt && key.expiresAt <= now) {
    throw new AppError(
      'key_expired',
      `API key ${key.hint} expired at ${key.expiresAt.toISOString()}. Rotate it or create a new one.`,
    );
  }
}

export function keyAllowsModel(key: KeyRecord, model: string): boolean {
  if (key.models === null) return true;
  return key.models.some((pattern) =>
    pattern.endsWith('*') ? model.startsWith(pattern.slice(0, -1)) : pattern === model,
  );
}

export function assertModelAllowed(key: KeyRecord, model: string): void {
  if (!keyAllowsModel(key, model)) {
    throw new AppError(
      'model_not_allowed',
      `API key ${key.hint} may not use the model '${model}'. Allowed: ${key.models?.join(', ')}.`,
      {
        param: 'model',
      },
    );
  }
}

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

import { AppError } from '@flowloom/errors';
import { z } from 'zod';
import type { KeyRecord } from '../domain/keys.js';
import type { CreateKeyInput } from './keys-admin.js';

/**
 * The key admin API's requests and answers, shared by its HTTP and gRPC entry points so that both
 * check input alike and show the same things (never a secret's hash).
 */

export const createKeyBody = z.strictObject({
  name: z.string().min(1).max(200),
  owner: z.string().min(1).max(200).optional(),
  project: z.string().min(1).max(200).optional(),
  team: z.string().min(1).max(200).optional(),
  job: z
    .string()
    .regex(/^[\x21-\x7e]{1,200}$/, 'job must be 1-200 printable ASCII characters without spaces')
    .optional(),
  /** A job policy: a pushed version's id or unique prefix, evaluated for this key's requests too. */
  policy: z
    .string()
    .regex(
      /^[0-9a-fA-F]{7,64}$/,
      'policy must be a policy version id or a prefix of at least 7 hex characters',
    )
    .optional(),
  role: z.enum(['admin', 'member']).optional(),
  models: z.array(z.string().min(1).max(200)).max(200).optional(),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  expiresInDays: z.number().positive().max(3650).optional(),
});

export const rotateKeyBody = z.strictObject({
  gracePeriodSeconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 86400)
    .default(3600),
});
export const keyIdParams = z.object({ id: z.uuid('id must be a key id (a UUID)') });
export const listKeysQuery = z.object({
  project: z.string().optional(),
  includeRevoked: z.enum(['true', 'false']).optional(),
});

/** The list a query asks for: revoked keys only when asked. */
export function listKeysFilter(query: z.output<typeof listKeysQuery>): {
  project?: string;
  includeRevoked: boolean;
} {
  return {
    ...(query.project ? { project: query.project } : {}),
    includeRevoked: query.includeRevoked === 'true',
  };
}

/** What to create: the caller owns the key unless it names an owner; an expiry as a time or in days. */
export function createKeyInput(
  body: z.output<typeof createKeyBody>,
  callerOwner: string,
  now = Date.now(),
): CreateKeyInput {
  if (body.expiresAt && body.expiresInDays) {
    throw new AppError('invalid_request', 'Give expiresAt or expiresInDays, not both.', {
      param: 'expiresAt',
    });
  }
  const expiresAt = body.expiresAt
    ? new Date(body.expiresAt)
    : body.expiresInDays
      ? new Date(now + body.expiresInDays * 86_400_000)
      : null;
  return {
    name: body.name,
    owner: body.owner ?? callerOwner,
    project: body.project ?? null,
    team: body.team ?? null,
    job: body.job ?? null,
    policy: body.policy ?? null,
    role: body.role ?? 'member',
    models: body.models ?? null,
    expiresAt,
  };
}

/** An admin key revoking itself would lock its holder out mid-call. */
export function assertNotSelf(id: string, callerKeyId: string): void {
  if (id === callerKeyId)
    throw new AppError('conflict', 'A key cannot revoke itself; use another admin key.');
}

export function keyStatus(key: KeyRecord, now = new Date()): 'active' | 'suspended' | 'revoked' | 'expired' {
  if (key.revokedAt && key.revokedAt <= now) return 'revoked';
  if (key.expiresAt && key.expiresAt <= now) return 'expired';
  return key.suspendedAt ? 'suspended' : 'active';
}

/** The public view of a key: never its secret or hash. */
export function keyView(key: KeyRecord) {
  return {
    id: key.id,
    name: key.name,
    owner: key.owner,
    project: key.project,
    team: key.team,
    job: key.job,
    /** The job policy version bound to the key, when there is one. */
    policy: key.policy ?? null,
    role: key.role,
    models: key.models,
    hint: key.hint,
    createdAt: key.createdAt.toISOString(),
    expiresAt: key.expiresAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
    rotatedFrom: key.rotatedFrom,
    createdBy: key.createdBy,
    rotatedBy: key.rotatedBy,
    /** `active`, `suspended` (an admin can resume it), `revoked` or `expired` (for good). */
    status: keyStatus(key),
    suspendedAt: key.suspendedAt?.toISOString() ?? null,
    suspension: key.suspension,
  };
}

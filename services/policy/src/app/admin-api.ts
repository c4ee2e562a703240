import { AppError } from '@flowloom/errors';
import type { PolicyDiff } from '@flowloom/policy-engine';
import { z } from 'zod';
import type { Actor, Deployment, KeyAncestor, PolicyVersion, Promotion } from '../domain/model.js';
import { parseSince } from '../domain/rollout.js';
import type { DecisionFilter } from '../ports/decision-store.js';
import type { PolicyAdmin } from './policies.js';
import type { ReplayRequest } from './replay.js';

/**
 * The admin API's requests and answers, shared by its HTTP and gRPC entry points so that both check
 * input alike and show the same things: zod schemas of what callers send, views of what they get.
 */

/** An admin authorizer's answer: the key, its owner and its lineage (see the gateway's key store). */
export interface AuthorizedAdmin {
  actor: string;
  keyId: string;
  owner: string;
  root: boolean;
  lineage: readonly KeyAncestor[];
}

/**
 * Who calls: approvals compare the person (the key's owner) and the key's lineage, which the
 * gateway's authorizer reads from its key table; the key's free-text owner alone proves nothing.
 */
export function actorOf(admin: AuthorizedAdmin): Actor {
  return {
    id: admin.owner,
    label: admin.actor,
    key: { keyId: admin.keyId, owner: admin.owner, root: admin.root, lineage: admin.lineage },
  };
}

export const sourceBody = {
  source: z
    .string()
    .max(1024 * 1024)
    .optional(),
  document: z.unknown().optional(),
  filename: z.string().max(500).optional(),
  format: z.enum(['yaml', 'json']).optional(),
};
export const validateBody = z.strictObject(sourceBody);
export const pushBody = z.strictObject({
  ...sourceBody,
  message: z.string().max(2000).optional(),
  /**
   * A job policy (`flowloom run --policy`): checked to only add restrictions, and accepted from the
   * bootstrap admin key, since it is bound to one job's key and never promoted by this push.
   */
  jobPolicy: z.boolean().optional(),
});
export const nameParams = z.object({ name: z.string().min(1).max(200) });
export const versionParams = z.object({
  name: z.string().min(1).max(200),
  version: z.string().min(7).max(64),
});
export const idParams = z.object({ id: z.string().min(1).max(100) });
export const diffQuery = z.object({ from: z.string().optional(), to: z.string().optional() });
export const promoteBody = z.strictObject({
  version: z.string().min(7).max(64),
  mode: z.enum(['shadow', 'canary', 'enforce']),
  percent: z.number().gt(0).lt(100).optional(),
  by: z.enum(['job', 'key']).optional(),
});
export const rollbackBody = z.strictObject({ to: z.string().min(7).max(64).optional() });
export const replayBody = z.strictObject({
  version: z.string().min(7).max(64),
  baseline: z.string().min(7).max(64).optional(),
  since: z.string().max(40).optional(),
  limit: z.number().int().positive().max(100_000).optional(),
  examples: z.number().int().min(0).max(20).optional(),
});
export const jobParams = z.object({
  job: z.string().regex(/^[\x21-\x7e]{1,200}$/, 'a job id is 1-200 printable ASCII characters'),
});
export const interventionsQuery = z.object({
  after: z.string().max(100).optional(),
  limit: z.coerce.number().int().positive().max(1000).default(100),
});
export const decisionsQuery = z.object({
  job: z.string().max(200).optional(),
  key: z.string().max(100).optional(),
  policy: z.string().max(200).optional(),
  verdict: z.string().max(40).optional(),
  since: z.string().max(40).optional(),
  limit: z.coerce.number().int().positive().max(1000).default(100),
});

export function versionView(v: PolicyVersion, full = false) {
  return {
    name: v.name,
    version: v.version,
    seq: v.seq,
    author: v.author,
    message: v.message,
    previous: v.previous,
    createdAt: v.createdAt.toISOString(),
    rules: v.document.rules.length,
    ...(full ? { format: v.format, source: v.source, document: v.document } : {}),
  };
}

export function deploymentView(d: Deployment | undefined) {
  if (!d) return null;
  return {
    revision: d.revision,
    stable: d.stable,
    candidate: d.candidate
      ? {
          version: d.candidate,
          mode: d.candidateMode,
          ...(d.candidateMode === 'canary' ? { percent: d.percent, by: d.by } : {}),
        }
      : null,
    reason: d.reason,
    actor: d.actor,
    promotionId: d.promotionId,
    at: d.createdAt.toISOString(),
  };
}

export function promotionView(p: Promotion) {
  return {
    id: p.id,
    name: p.name,
    version: p.version,
    mode: p.mode,
    ...(p.percent !== null ? { percent: p.percent } : {}),
    ...(p.by !== null ? { by: p.by } : {}),
    author: p.author,
    requestedBy: p.requestedBy,
    requestedAt: p.requestedAt.toISOString(),
    status: p.status,
    approvedBy: p.approvedBy,
    ...(p.approver ? { approver: p.approver } : {}),
    approvedAt: p.approvedAt?.toISOString() ?? null,
    revision: p.revision,
  };
}

/** Rule ids added, removed and changed. */
export function ruleChanges(diff: PolicyDiff): { added: string[]; removed: string[]; changed: string[] } {
  return {
    added: diff.added.map((r) => r.id),
    removed: diff.removed.map((r) => r.id),
    changed: diff.changed.map((r) => r.id),
  };
}

export function replayRequestOf(name: string | undefined, body: z.output<typeof replayBody>): ReplayRequest {
  return {
    ...(name !== undefined ? { name } : {}),
    version: body.version,
    ...(body.baseline ? { baseline: body.baseline } : {}),
    ...(body.since ? { since: body.since } : {}),
    ...(body.limit ? { limit: body.limit } : {}),
    ...(body.examples !== undefined ? { examples: body.examples } : {}),
  };
}

export function decisionFilterOf(q: z.output<typeof decisionsQuery>, now = new Date()): DecisionFilter {
  return {
    limit: q.limit,
    ...(q.job ? { job: q.job } : {}),
    ...(q.key ? { keyId: q.key } : {}),
    ...(q.policy ? { policy: q.policy } : {}),
    ...(q.verdict ? { verdict: q.verdict } : {}),
    ...(q.since ? { since: parseSince(q.since, now) } : {}),
  };
}

/** A decision as listed: without the input it was evaluated on (GET /api/v1/decisions/{id} has it). */
export function withoutInput<T extends { input?: unknown }>(record: T): Omit<T, 'input'> {
  const { input: _input, ...rest } = record;
  return rest;
}

export async function findPromotion(admin: PolicyAdmin, id: string): Promise<Promotion> {
  const promotion = await admin.promotion(id);
  if (!promotion) throw new AppError('not_found', `No promotion ${id}.`, { param: 'id' });
  return promotion;
}

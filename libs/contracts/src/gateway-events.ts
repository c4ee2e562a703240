import { z } from 'zod';
import { auditEventPayloadSchemas } from './audit-events.js';
import { outboxEventPayloadSchemas } from './outbox-events.js';
import { policyEventPayloadSchemas } from './policy-events.js';

// Payloads evolve by adding optional fields only, so producers and consumers of different versions
// interoperate during a rolling deploy.

export const GATEWAY_REQUEST_COMPLETED = 'dev.flowloom.gateway.request.completed.v1';
export const GATEWAY_REQUEST_FAILED = 'dev.flowloom.gateway.request.failed.v1';
export const GATEWAY_KEY_CHANGED = 'dev.flowloom.gateway.key.changed.v1';
/** A presented key was refused (unknown, revoked, expired, missing, or not an admin key on the admin API). */
export const GATEWAY_AUTH_FAILED = 'dev.flowloom.gateway.auth.failed.v1';
/** An admin key authenticated to the admin API (a "login"); at most one per key per window. */
export const GATEWAY_AUTH_SUCCEEDED = 'dev.flowloom.gateway.auth.succeeded.v1';

const requestContext = {
  requestId: z.string(),
  keyId: z.string().optional(),
  owner: z.string().optional(),
  project: z.string().optional(),
  job: z.string().optional(),
  session: z.string().optional(),
  /** `openai`, `anthropic` or `grpc`: the API the caller used. */
  api: z.string(),
  operation: z.enum(['chat', 'embeddings']),
  model: z.string(),
  stream: z.boolean(),
  latencyMs: z.number(),
  attempts: z.number().int(),
  /**
   * The policy decision taken before the call (its record, at GET /api/v1/decisions/{id}, holds the
   * facts the policies read); absent when no policy was active.
   */
  decisionId: z.string().optional(),
};

export const usageSchema = z.object({
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cachedInputTokens: z.number().int(),
  /** Part of inputTokens written to the provider's prompt cache (Anthropic), billed at its own rate. */
  cacheWriteTokens: z.number().int().optional(),
  /** Part of cacheWriteTokens cached for one hour, billed at its own rate. */
  cacheWrite1hTokens: z.number().int().optional(),
  /** Part of outputTokens spent on reasoning, when the provider reports it. */
  reasoningTokens: z.number().int().optional(),
});

export const requestCompletedSchema = z.object({
  ...requestContext,
  provider: z.string(),
  deployment: z.string(),
  providerModel: z.string(),
  usage: usageSchema,
  costUsd: z.number(),
  finishReason: z.string().optional(),
  timeToFirstTokenMs: z.number().optional(),
  /** The provider reported no usage for a stream; tokens were estimated from the text. */
  usageEstimated: z.boolean().optional(),
});
export type RequestCompleted = z.infer<typeof requestCompletedSchema>;

export const requestFailedSchema = z.object({
  ...requestContext,
  errorCode: z.string(),
  errorMessage: z.string(),
  httpStatus: z.number().int(),
  provider: z.string().optional(),
  deployment: z.string().optional(),
  /** Tokens and cost already spent when a stream broke after it started. */
  usage: usageSchema.optional(),
  costUsd: z.number().optional(),
});
export type RequestFailed = z.infer<typeof requestFailedSchema>;

export const keyChangedSchema = z.object({
  keyId: z.string(),
  action: z.enum(['created', 'revoked', 'rotated', 'suspended', 'resumed']),
  actor: z.string(),
  name: z.string(),
  project: z.string().optional(),
  /** The admin key that created the key (kept across rotations); absent for the bootstrap key. */
  createdBy: z.string().optional(),
  /** The admin key that rotated it, which was handed the new secret. */
  rotatedBy: z.string().optional(),
  /** The job policy version its requests are also evaluated against (`flowloom run --policy`). */
  jobPolicy: z.string().optional(),
  /** `suspended` by a policy: the decision, policy, version and rule that did it, and why. */
  decisionId: z.string().optional(),
  policy: z.string().optional(),
  version: z.string().optional(),
  rule: z.string().optional(),
  reason: z.string().optional(),
});
export type KeyChanged = z.infer<typeof keyChangedSchema>;

const authAttempt = {
  /** `model` (the model APIs, HTTP or gRPC) or `admin` (the admin API). */
  surface: z.enum(['model', 'admin']),
  /** `openai`, `anthropic`, `gemini`, `grpc` or `admin`: the API the caller used. */
  api: z.string(),
  requestId: z.string(),
  sourceIp: z.string().optional(),
  /** The first characters of the presented key (its hint), never the secret. */
  keyHint: z.string().optional(),
  /** The key's id when the presented secret matched a key (revoked, expired, not admin). */
  keyId: z.string().optional(),
  owner: z.string().optional(),
};

export const authFailedSchema = z.object({
  ...authAttempt,
  /** The error code the caller got: missing_api_key, invalid_api_key, key_revoked, key_expired, key_suspended, forbidden. */
  reason: z.string(),
  /**
   * Further refusals of the same key from the same address within this many seconds are not
   * recorded one by one but counted, and recorded as one event with `count` when the window closes.
   */
  windowSeconds: z.number().int().positive().optional(),
  /** A summary: how many refused attempts this event stands for (absent: one, this attempt). */
  count: z.number().int().positive().optional(),
  /** A summary: the first and last counted attempt (RFC 3339); `requestId` is the last one's. */
  firstAt: z.string().optional(),
  lastAt: z.string().optional(),
  /**
   * `key`: one presented key from one address (the default); `source`: every key this address
   * presented once it had tried many (`keyHint` and `keyId` are then left out); `all`: every
   * address, when too many were failing at once to track each.
   */
  scope: z.enum(['key', 'source', 'all']).optional(),
  /** A summary: how many different keys the counted attempts presented. */
  distinctKeys: z.number().int().positive().optional(),
});
export type AuthFailed = z.infer<typeof authFailedSchema>;

export const authSucceededSchema = z.object({
  ...authAttempt,
  keyId: z.string(),
  /** `key/<id> (<name>)`, as in the admin's other events. */
  actor: z.string(),
  /** Later successes of this key within this many seconds are not recorded again (per process). */
  dedupSeconds: z.number().int(),
});
export type AuthSucceeded = z.infer<typeof authSucceededSchema>;

/** The payload schema of each event type this package knows; consumers validate `data` with it. */
export const eventPayloadSchemas: Record<string, z.ZodType> = {
  [GATEWAY_REQUEST_COMPLETED]: requestCompletedSchema,
  [GATEWAY_REQUEST_FAILED]: requestFailedSchema,
  [GATEWAY_KEY_CHANGED]: keyChangedSchema,
  [GATEWAY_AUTH_FAILED]: authFailedSchema,
  [GATEWAY_AUTH_SUCCEEDED]: authSucceededSchema,
  ...policyEventPayloadSchemas,
  ...auditEventPayloadSchemas,
  ...outboxEventPayloadSchemas,
};

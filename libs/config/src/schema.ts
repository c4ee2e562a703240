import { z } from 'zod';

export const providerKinds = [
  'openai',
  'azure',
  'anthropic',
  'gemini',
  'openai-compatible',
  'local',
] as const;
export type ProviderKind = (typeof providerKinds)[number];

export const capabilities = ['tools', 'vision', 'json', 'streaming', 'embeddings'] as const;
export type Capability = (typeof capabilities)[number];

/** USD per million tokens. */
export const priceSchema = z.strictObject({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  cachedInput: z.number().nonnegative().optional(),
  /** Prompt-cache writes (Anthropic bills them above the input rate); the input rate when absent. */
  cacheWriteInput: z.number().nonnegative().optional(),
  /** One-hour prompt-cache writes; the cacheWriteInput rate when absent. */
  cacheWrite1hInput: z.number().nonnegative().optional(),
});
export type Price = z.infer<typeof priceSchema>;

export const providerSchema = z
  .strictObject({
    kind: z.enum(providerKinds),
    baseUrl: z.url().optional(),
    /** Prefer `apiKeyEnv`: a key written in flowloom.yaml ends up in backups and diffs. */
    apiKey: z.string().min(1).optional(),
    apiKeyEnv: z.string().min(1).optional(),
    /** Azure OpenAI `api-version`. */
    apiVersion: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    /** Model names this provider serves directly when no alias matches; `*` is a wildcard. */
    models: z.array(z.string().min(1)).optional(),
  })
  .superRefine((p, ctx) => {
    if ((p.kind === 'openai-compatible' || p.kind === 'azure') && !p.baseUrl) {
      ctx.addIssue({
        code: 'custom',
        message: `a provider of kind ${p.kind} needs baseUrl`,
        path: ['baseUrl'],
      });
    }
  });
export type ProviderConfig = z.infer<typeof providerSchema>;

export const deploymentSchema = z.strictObject({
  provider: z.string().min(1),
  /** The provider's model name (for Azure, the deployment name). */
  model: z.string().min(1),
  region: z.string().optional(),
  weight: z.number().positive().default(1),
  price: priceSchema.optional(),
  capabilities: z.array(z.enum(capabilities)).optional(),
  contextWindow: z.number().int().positive().optional(),
  /** The most output tokens the model accepts as max_tokens; bounds the allowance a budget reserves. */
  maxOutputTokens: z.number().int().positive().optional(),
});
export type DeploymentConfig = z.infer<typeof deploymentSchema>;

export const routeSchema = z.strictObject({
  strategy: z.enum(['priority', 'weighted', 'latency', 'cost']).default('priority'),
  deployments: z.array(deploymentSchema).min(1),
});
export type RouteConfig = z.infer<typeof routeSchema>;

export const routingSchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(10).default(3),
  attemptTimeoutMs: z.number().int().positive().default(60_000),
  totalTimeoutMs: z.number().int().positive().default(180_000),
  retryBaseMs: z.number().int().nonnegative().default(100),
  retryMaxMs: z.number().int().nonnegative().default(5_000),
  circuitBreaker: z
    .strictObject({
      failureThreshold: z.number().int().min(1).default(5),
      cooldownMs: z.number().int().positive().default(30_000),
    })
    .default({ failureThreshold: 5, cooldownMs: 30_000 }),
});
export type RoutingConfig = z.infer<typeof routingSchema>;

const limitScope = z.enum(['key', 'project', 'team', 'job']);

export const budgetSchema = z.strictObject({
  scope: limitScope,
  /** One subject (a key id, project, team or job); every subject of the scope when omitted. */
  id: z.string().min(1).optional(),
  period: z.enum(['day', 'month', 'total']),
  limitUsd: z.number().positive(),
});
export type BudgetConfig = z.infer<typeof budgetSchema>;

export const rateLimitSchema = z
  .strictObject({
    scope: limitScope,
    id: z.string().min(1).optional(),
    requestsPerMinute: z.number().int().positive().optional(),
    tokensPerMinute: z.number().int().positive().optional(),
  })
  .refine((r) => r.requestsPerMinute !== undefined || r.tokensPerMinute !== undefined, {
    message: 'give requestsPerMinute, tokensPerMinute or both',
  });
export type RateLimitConfig = z.infer<typeof rateLimitSchema>;

/**
 * The HTTP address of a peer service the gateway forwards admin requests to: an origin only
 * (`http://policy:8080`), so that a request's path can never change where it goes.
 */
export const peerHttpUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL such as http://policy:8080' })
  .refine((value) => {
    const url = new URL(value);
    // Another scheme is the check above's to report, once.
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return true;
    return url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
  }, 'must be the address only (scheme, host and port), with no path, query or credentials, e.g. http://policy:8080');

/** A plain lowercase PostgreSQL role name (no quoting needed). */
const postgresRoleSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a plain lowercase PostgreSQL role name such as flowloom_audit_writer');

export const policyConfigSchema = z.strictObject({
  /** A policy document (YAML or JSON) loaded at start: pushed to the policy service, or enforced directly by a lone gateway. */
  file: z.string().min(1).optional(),
  /** How the file's version is rolled out at start. */
  mode: z.enum(['enforce', 'shadow', 'canary']).default('enforce'),
  /** Canary share (0-100) when mode is canary. */
  percent: z.number().min(0).max(100).default(10),
  /** gRPC address (`host:port`) of a policy service to stream bundles from (distributed mode). */
  serviceUrl: z
    .string()
    .regex(/^[^\s/]+:\d+$/, 'must be host:port')
    .optional(),
  /**
   * The gateway's service credential for the policy service's bundle stream: an admin key, sent as
   * `authorization: Bearer <key>`. `adminKey` when omitted.
   */
  serviceKey: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Port of the policy service's own gRPC server (bundle stream for remote gateways); off when omitted. */
  grpcPort: z.number().int().min(0).max(65535).optional(),
  /** HTTP address of the policy service: a standalone gateway forwards the policy admin API there. */
  httpUrl: peerHttpUrlSchema.optional(),
  /**
   * The PostgreSQL login `serve policy` connects as, when it is not the schema owner: `flowloom
   * migrate` grants it exactly what the service needs (its own tables, reading api_keys, the outbox).
   */
  dbLogin: postgresRoleSchema.optional(),
  /**
   * Days the policy service keeps its working copies: decisions (lookup, explanations), interventions
   * and replay's request traffic. The audit ledger keeps each of them as `audit.retention` says.
   */
  retentionDays: z.number().int().positive().max(36_500).default(30),
  /** How often that retention runs. */
  retentionIntervalMs: z.number().int().min(1_000).default(3_600_000),
});
export type PolicyConfig = z.infer<typeof policyConfigSchema>;

/** Sliding windows of the runaway signals (per job, else session, else key). */
export const signalsConfigSchema = z.strictObject({
  /** Rates (spend, tokens, requests per minute, error rate) are measured over this window. */
  windowSeconds: z.number().int().min(10).max(3600).default(60),
  /** Earlier prompts within this window count towards repeated_prompts. */
  repeatWindowSeconds: z.number().int().min(10).max(86_400).default(300),
  /** How many recent prompt fingerprints are kept per subject. */
  maxPrompts: z.number().int().min(2).max(256).default(32),
  /** Prompts whose word pairs overlap at least this much (estimated Jaccard, 0.5-1; 1 = exact only) are near-identical. */
  similarity: z.number().min(0.5).max(1).default(0.75),
  /** A subject idle this long forgets its signals (and its job duration starts over). */
  idleSeconds: z.number().int().min(60).default(3600),
});
export type SignalsConfig = z.infer<typeof signalsConfigSchema>;

/** A retention rule's event type: an exact type, or a prefix ending in `*` (`dev.flowloom.gateway.*`). */
const retentionTypeSchema = z
  .string()
  .regex(
    /^(\*|[a-z0-9_.-]+\*?)$/,
    'an event type such as dev.flowloom.gateway.request.completed.v1, or a prefix ending in *',
  );

/** The audit service: ledger checkpoints, signing key, external copies, retention (README "Audit trail"). */
export const auditConfigSchema = z.strictObject({
  /**
   * The log's identity, written in every checkpoint and used as the signing key's name, e.g.
   * `audit.example.com/flowloom`. A new log without one picks `flowloom.local/audit/<random>`; the
   * origin of an existing log never changes.
   */
  origin: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^\s+]+$/, 'no spaces and no "+"')
    .optional(),
  /** A signed checkpoint is issued this often while there are new entries. */
  checkpointIntervalMs: z.number().int().min(100).max(3_600_000).default(5_000),
  /** Ed25519 signing key (`PRIVATE+KEY+…` text, mode 0600); generated at `<dataDir>/audit/signing-key` when omitted. */
  signingKeyFile: z.string().min(1).optional(),
  /**
   * `generate`: a missing key is generated at start, and rotated through the API. `provided`: the key
   * comes from outside and is shared by replicas (a Kubernetes Secret made with `flowloom audit
   * keygen`): a missing file stops start-up, and it is rotated by replacing it (recorded at start).
   */
  signingKeyMode: z.enum(['generate', 'provided']).default('generate'),
  /** A folder outside the database that receives a copy of every checkpoint (one file each). */
  checkpointDir: z.string().min(1).optional(),
  /** An HTTP(S) endpoint that receives every checkpoint as a `text/plain` POST (a witness). */
  checkpointUrl: z.url().optional(),
  /** Days to keep entry content per event type (the longest matching rule wins); forever when none matches. */
  retention: z.record(retentionTypeSchema, z.number().int().positive().max(36_500)).default({}),
  /** How often retention runs. */
  retentionIntervalMs: z.number().int().min(1_000).default(3_600_000),
  /**
   * gRPC port of `flowloom.audit.v1.Audit`, a server of its own. Unset: the standalone service uses
   * 50052, and `flowloom up` the gateway's gRPC port + 1 (a free port when that one is taken).
   */
  grpcPort: z.number().int().min(0).max(65535).optional(),
  /** HTTP port of the standalone audit service (in `flowloom up` its routes are on the gateway's port). */
  httpPort: z.number().int().min(0).max(65535).default(8081),
  /** HTTP address of the audit service: a standalone gateway forwards `/api/v1/audit/*` there. */
  httpUrl: peerHttpUrlSchema.optional(),
  /**
   * On PostgreSQL, the role the ledger runs as: `flowloom migrate` creates it (NOLOGIN, INSERT and
   * SELECT only on the ledger tables) and the audit service connects with it set, so UPDATE, DELETE
   * and TRUNCATE are refused by privileges even if a trigger is dropped. `off`: triggers only.
   */
  dbRole: postgresRoleSchema.default('flowloom_audit_writer'),
  /** Login users `flowloom migrate` grants dbRole to, besides the user it connects as (a separate audit login). */
  dbRoleMembers: z.array(postgresRoleSchema).default([]),
  /**
   * The PostgreSQL login `serve audit` connects as, when it is not the schema owner: `flowloom
   * migrate` makes it a member of dbRole and grants it reading api_keys and the outbox.
   */
  dbLogin: postgresRoleSchema.optional(),
});
export type AuditConfig = z.infer<typeof auditConfigSchema>;

const channelName = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lowercase letters, digits, _ and -');

/** Where an enforced `alert` action posts: a webhook with its format (README "Alerts"). */
export const alertChannelSchema = z
  .strictObject({
    /** The webhook URL. A Slack webhook URL is itself a secret: prefer `urlEnv`. */
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
    /** The environment variable holding the webhook URL, read at start and never logged. */
    urlEnv: z.string().min(1).optional(),
    /** `json`: FlowLoom's own payload; `slack`: a Slack incoming-webhook `{"text": ...}`. */
    format: z.enum(['json', 'slack']).default('json'),
    /** Extra headers, literal (e.g. a team tag). */
    headers: z.record(z.string().min(1), z.string()).default({}),
    /** Headers whose value is read from an environment variable (a token): header name → variable name. */
    headersEnv: z.record(z.string().min(1), z.string().min(1)).default({}),
  })
  .refine((c) => (c.url === undefined) !== (c.urlEnv === undefined), {
    message: 'give exactly one of url and urlEnv',
  });
export type AlertChannelConfig = z.infer<typeof alertChannelSchema>;

export const alertsConfigSchema = z.strictObject({
  /** Named channels that policies' `alert` actions name (`{ type: alert, channel: ops }`). */
  channels: z.record(channelName, alertChannelSchema).default({}),
  /** The channel of an `alert` action that names none; such alerts are only recorded when unset. */
  defaultChannel: channelName.optional(),
  /** Public address of the gateway (or console): a post links the decision at `<linkBaseUrl>/api/v1/decisions/<id>`. */
  linkBaseUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Posts waiting per channel; when full the oldest is dropped (and counted). */
  queueSize: z.number().int().min(1).max(100_000).default(1000),
  /** Per attempt. */
  timeoutMs: z.number().int().min(100).max(120_000).default(5_000),
  maxAttempts: z.number().int().min(1).max(10).default(4),
  /** Jittered exponential back-off between attempts, never shorter than the channel's retry-after. */
  retryBaseMs: z.number().int().min(0).default(500),
  retryMaxMs: z.number().int().min(0).default(30_000),
  /** Rate limit per channel, rule and subject (job, else session, else key): `perWindow` posts per window, the rest summarized. */
  windowSeconds: z.number().int().min(1).max(3600).default(60),
  perWindow: z.number().int().min(1).max(1000).default(1),
});
export type AlertsConfig = z.infer<typeof alertsConfigSchema>;

export const kafkaTopicsSchema = z.strictObject({
  /** Partitions per topic: the most consumers of one group that can share a family's events. */
  partitions: z.number().int().min(1).max(10_000).default(6),
  /** Copies of each partition, each on its own broker: 1 for one broker, 3 in production. */
  replicationFactor: z.number().int().min(1).max(32).default(1),
  /** First part of topic (and consumer group) names, so that several installs can share a cluster. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,100}$/, 'letters, digits, _ and - only (at most 100)')
    .default('flowloom'),
});
export type KafkaTopicsConfig = z.infer<typeof kafkaTopicsSchema>;

export const configSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  httpPort: z.number().int().min(0).max(65535).default(8080),
  grpcPort: z.number().int().min(0).max(65535).default(50051),
  dataDir: z.string().min(1).default('./.flowloom'),
  /** A `postgres://` URL: use a real PostgreSQL instead of the embedded PGlite. */
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  /** Kafka brokers (`host:port`): events travel on Kafka instead of the in-process bus. */
  kafkaBrokers: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port')).optional(),
  /** How the Kafka bus creates its topics (one per event family); topics that exist are left as they are. */
  kafkaTopics: kafkaTopicsSchema.default(kafkaTopicsSchema.parse({})),
  /** A `redis://` URL: budgets and rate limits shared by all gateway replicas; in-process when omitted. */
  redisUrl: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .optional(),
  /** When Redis is unreachable: `local` keeps serving with per-replica limits, `closed` refuses requests. */
  limitsFallback: z.enum(['local', 'closed']).default('local'),
  budgets: z.array(budgetSchema).default([]),
  rateLimits: z.array(rateLimitSchema).default([]),
  /**
   * The output allowance of a request without max_tokens that a budget applies to: reserved as its worst
   * case and sent upstream as its max_tokens, so that no answer can cost more than its reservation.
   */
  defaultMaxOutputTokens: z.number().int().positive().default(4096),
  adminKey: z.string().min(16, 'must be at least 16 characters').optional(),
  /**
   * Refused API keys reach the audit trail aggregated: the first refusal of a presented key from an
   * address at once, its further refusals within this window counted and recorded as one event
   * with the count when the window closes.
   */
  authFailureWindowMs: z.number().int().min(100).max(3_600_000).default(60_000),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 * 1024),
  /**
   * Embedded outbox durability: `interval` (default) acknowledges once the OS has the event and
   * flushes to disk within 50 ms; `always` flushes before acknowledging; `never` leaves it to the OS.
   */
  outboxFsync: z.enum(['always', 'interval', 'never']).default('interval'),
  /**
   * On PostgreSQL, when the database is unreachable: `spool` keeps serving and writes events to a
   * durable local spool in the data folder, moved into the database once it is back; `fail` refuses
   * requests with 503 before any upstream call, so nothing is answered that cannot be recorded.
   */
  outboxOnDatabaseDown: z.enum(['spool', 'fail']).default('spool'),
  /**
   * How long a standalone gateway waits for the policy or audit service to start answering a
   * forwarded admin request (policy.httpUrl, audit.httpUrl) before it answers 504; a streamed
   * answer, once started, is not cut.
   */
  peerTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  providers: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lowercase letters, digits, _ and -'), providerSchema)
    .default({}),
  models: z.record(z.string().min(1), routeSchema).default({}),
  routing: routingSchema.default(routingSchema.parse({})),
  prices: z.record(z.string().min(1), priceSchema).default({}),
  policy: policyConfigSchema.default(policyConfigSchema.parse({})),
  signals: signalsConfigSchema.default(signalsConfigSchema.parse({})),
  audit: auditConfigSchema.default(auditConfigSchema.parse({})),
  alerts: alertsConfigSchema.default(alertsConfigSchema.parse({})),
});
export type Config = z.infer<typeof configSchema>;

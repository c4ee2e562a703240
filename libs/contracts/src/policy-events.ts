import { z } from 'zod';

// Events of policies and runaway control. Payloads evolve by adding optional fields only.

/** Every inline decision of the gateway (source flowloom/gateway). */
export const POLICY_DECISION = 'dev.flowloom.policy.decision.v1';
/** A decision that intervened or, in shadow/canary, would have (source flowloom/gateway). */
export const POLICY_INTERVENTION = 'dev.flowloom.policy.intervention.v1';
/** A job was stopped (by a policy or an admin) or cleared (source flowloom/gateway). */
export const POLICY_JOB_CHANGED = 'dev.flowloom.policy.job.changed.v1';
/** An enforced alert action's post to its channel: delivered, failed after retries, dropped, or unconfigured (source flowloom/gateway). */
export const POLICY_ALERT_DELIVERY = 'dev.flowloom.policy.alert.delivery.v1';
/** Policy service: a new immutable version was stored. */
export const POLICY_VERSION_PUSHED = 'dev.flowloom.policy.version.pushed.v1';
/** Policy service: someone asked to promote a version; it waits for approval. */
export const POLICY_PROMOTION_REQUESTED = 'dev.flowloom.policy.promotion.requested.v1';
/** Policy service: another person approved a promotion (it is applied at once). */
export const POLICY_PROMOTION_APPROVED = 'dev.flowloom.policy.promotion.approved.v1';
/** Policy service: what gateways enforce changed (promotion, shadow, rollback, initial file). */
export const POLICY_DEPLOYMENT_CHANGED = 'dev.flowloom.policy.deployment.changed.v1';

const actionSchema = z.object({ type: z.string() }).catchall(z.unknown());

export const decisionOutcomeSchema = z.object({
  verdict: z.string(),
  /** The rule that decided the verdict; null when none matched (default allow). */
  decidedBy: z.string().nullable(),
  actions: z.array(z.object({ ruleId: z.string(), action: actionSchema })),
  message: z.string().optional(),
});
export type DecisionOutcome = z.infer<typeof decisionOutcomeSchema>;

export const ruleErrorSchema = z.object({
  ruleId: z.string(),
  message: z.string(),
  onError: z.enum(['open', 'closed']),
  treatedAs: z.enum(['match', 'no_match']),
});

/**
 * One policy version evaluated for a request. Rules are recorded compactly: the ids that matched and
 * the failures; every other rule of the (content-addressed) version did not match. `inputs` holds the
 * value of every path any rule read, so each rule's inputs follow from the version's document.
 */
export const policyEvaluationSchema = z.object({
  policy: z.string(),
  version: z.string(),
  /** stable: the enforced version; candidate: a version being rolled out in shadow or canary. */
  role: z.enum(['stable', 'candidate']),
  mode: z.enum(['enforce', 'shadow', 'canary']),
  enforced: z.boolean(),
  canary: z
    .object({
      subject: z.string(),
      subjectKind: z.enum(['job', 'key']),
      bucket: z.number().int(),
      percent: z.number(),
      enforced: z.boolean(),
    })
    .optional(),
  intended: decisionOutcomeSchema,
  effective: decisionOutcomeSchema,
  ruleCount: z.number().int(),
  matched: z.array(z.string()),
  errors: z.array(ruleErrorSchema),
  inputs: z.record(z.string(), z.unknown()),
  /**
   * A job policy: the version bound to the request's key (`flowloom run --policy`), evaluated in
   * enforce mode next to the active bundle. It only adds restrictions, so it needs no approval.
   */
  jobPolicy: z.boolean().optional(),
});
export type PolicyEvaluation = z.infer<typeof policyEvaluationSchema>;

export const decisionRecordSchema = z.object({
  decisionId: z.string(),
  requestId: z.string(),
  /** ISO time of the decision. */
  at: z.string(),
  /**
   * Before the call (absent in records made before phases existed), or after the answer: the rules
   * that read the answer's usage and cost. A request has at most one of each, both with its requestId.
   */
  phase: z.enum(['pre_call', 'post_call']).optional(),
  /** On a post-call decision: the request's pre-call decision. */
  follows: z.string().optional(),
  keyId: z.string().optional(),
  owner: z.string().optional(),
  project: z.string().optional(),
  job: z.string().optional(),
  session: z.string().optional(),
  api: z.string().optional(),
  operation: z.string().optional(),
  model: z.string().optional(),
  /** The policy, version and mode of the evaluation that decided what happened (or the first one). */
  policy: z.string().optional(),
  version: z.string().optional(),
  mode: z.string().optional(),
  rule: z.string().nullable().optional(),
  /** What happened. */
  verdict: z.string(),
  actions: z.array(z.object({ ruleId: z.string(), policy: z.string(), action: actionSchema })),
  /** What the policies asked for, enforced or not (shadow and canary record the intended action here). */
  intendedVerdict: z.string(),
  intendedActions: z.array(z.object({ ruleId: z.string(), policy: z.string(), action: actionSchema })),
  /** Whether the intended outcome was carried out. */
  enforced: z.boolean(),
  message: z.string().optional(),
  evaluations: z.array(policyEvaluationSchema),
  /** Microseconds spent evaluating (all versions). */
  evaluationMicros: z.number(),
  /** Signals as the policies saw them. */
  signals: z.record(z.string(), z.number()).optional(),
  /** A request of a job stopped earlier: refused without evaluation; names the stopping decision. */
  stoppedBy: z.string().optional(),
  /** A problem outside the rules (e.g. the signal store unreachable) and how the rules' onError treated it. */
  failure: z.string().optional(),
  /** Masked matches in the prompt (redact). */
  redactions: z.number().int().optional(),
  /**
   * The facts evaluated (credentials removed), kept so that a candidate version can be replayed
   * against them. A pre-call decision of an answered request also carries the answer (`response`:
   * usage, cost, status), added once it is known, so post-call rules can be replayed on it.
   */
  input: z.record(z.string(), z.unknown()).optional(),
});
export type DecisionRecord = z.infer<typeof decisionRecordSchema>;

export const thresholdSchema = z.object({
  path: z.string(),
  operator: z.string(),
  value: z.number(),
});
export type Threshold = z.infer<typeof thresholdSchema>;

export const interventionSchema = z.object({
  decisionId: z.string(),
  requestId: z.string(),
  keyId: z.string().optional(),
  project: z.string().optional(),
  job: z.string().optional(),
  session: z.string().optional(),
  /** The main action: stop_job, suspend_key, block, throttle, reroute, redact, cap_max_tokens or alert. */
  action: z.string(),
  /** Every action of the decision, main one first. */
  actions: z.array(z.string()),
  /** false: shadow or canary-shadowed, recorded only (nothing was changed). */
  enforced: z.boolean(),
  mode: z.string(),
  /** post_call: decided on the answer (the key or job is acted on, the request was already answered). */
  phase: z.enum(['pre_call', 'post_call']).optional(),
  policy: z.string(),
  version: z.string(),
  rule: z.string().nullable(),
  reason: z.string(),
  /** Signal values the decision saw. */
  signals: z.record(z.string(), z.number()).optional(),
  /** Comparisons of the deciding rule against literal numbers, e.g. signals.repeated_prompts >= 5. */
  thresholds: z.array(thresholdSchema).optional(),
  /** For alert: the rule's channel. */
  channel: z.string().optional(),
  /** Decided by the job policy bound to the key (`flowloom run --policy`), not the active bundle. */
  jobPolicy: z.boolean().optional(),
  /**
   * Who found it: the gateway's policies on a request (absent: gateway), or the supervisor of a
   * local job (`flowloom run`) watching the process itself. A supervisor's finding names the
   * policy SUPERVISOR_POLICY, its watch settings' hash as version, and the watch as rule.
   */
  origin: z.enum(['gateway', 'supervisor']).optional(),
  /** For a supervisor's finding: the admin that reported it and the process it was about. */
  supervisor: z
    .object({
      actor: z.string(),
      attempt: z.number().int().optional(),
      pid: z.number().int().optional(),
      command: z.string().optional(),
      /** When the supervisor acted (ISO time); the event's own time is when it was recorded. */
      at: z.string().optional(),
    })
    .optional(),
});
export type Intervention = z.infer<typeof interventionSchema>;

/** The policy name of a supervisor's own watches (process memory, CPU, repeated output, silence). */
export const SUPERVISOR_POLICY = 'flowloom-run';

/**
 * What `flowloom run` reports about an intervention of its own (POST /api/v1/jobs/{job}/interventions);
 * the gateway records it as an intervention event with origin `supervisor`.
 */
export const supervisorReportSchema = z.strictObject({
  /** The watch that found it. */
  watch: z.enum(['memory', 'cpu', 'repeated_output', 'silence']),
  action: z.enum(['alert', 'stop_job']),
  reason: z.string().min(1).max(1000),
  /** Hex SHA-256 of the supervisor's watch settings (canonical JSON): the "version" of its rules. */
  version: z.string().regex(/^[0-9a-f]{64}$/, 'a hex SHA-256'),
  /** What the watch measured, e.g. rss_mb. */
  signals: z
    .record(z.string().regex(/^[a-z][a-z0-9_.]{0,99}$/, 'a lowercase name'), z.number())
    .refine((v) => Object.keys(v).length <= 32, 'at most 32 values'),
  /** The limits it compared them with, e.g. process.rss_mb > 512. */
  thresholds: z.array(thresholdSchema).max(16),
  /** The job's own key, whose traffic this is. */
  keyId: z.string().max(200).optional(),
  attempt: z.number().int().min(1).optional(),
  pid: z.number().int().min(1).optional(),
  command: z.string().max(2000).optional(),
  at: z.iso.datetime().optional(),
});
export type SupervisorReport = z.infer<typeof supervisorReportSchema>;

export const jobChangedSchema = z.object({
  job: z.string(),
  status: z.enum(['stopped', 'cleared']),
  actor: z.string(),
  reason: z.string().optional(),
  decisionId: z.string().optional(),
  policy: z.string().optional(),
  version: z.string().optional(),
  rule: z.string().optional(),
});
export type JobChanged = z.infer<typeof jobChangedSchema>;

export const policyVersionPushedSchema = z.object({
  name: z.string(),
  version: z.string(),
  seq: z.number().int(),
  author: z.string(),
  message: z.string(),
  previous: z.string().optional(),
  /** The normalized document: with the version id, anyone can re-derive every decision's rule traces. */
  document: z.unknown(),
  added: z.array(z.string()).optional(),
  removed: z.array(z.string()).optional(),
  changed: z.array(z.string()).optional(),
  /**
   * Pushed as a job policy (`flowloom run --policy`): checked to only add restrictions (no reroute),
   * bound to one job's key, never deployed by this push; so no second person approves it.
   */
  jobPolicy: z.boolean().optional(),
});
export type PolicyVersionPushed = z.infer<typeof policyVersionPushedSchema>;

const rolloutFields = {
  mode: z.enum(['shadow', 'canary', 'enforce']),
  percent: z.number().optional(),
  by: z.enum(['job', 'key']).optional(),
};

/** A key whose holder could have known another key's secret (its creator, rotator and theirs). */
const keyAncestorSchema = z.object({ keyId: z.string(), owner: z.string(), root: z.boolean() });

export const policyPromotionSchema = z.object({
  promotionId: z.string(),
  name: z.string(),
  version: z.string(),
  ...rolloutFields,
  author: z.string(),
  requestedBy: z.string(),
  approvedBy: z.string().optional(),
  /** The key the version was pushed with, and its lineage then (approval events). */
  authorKey: z.string().optional(),
  authorLineage: z.array(keyAncestorSchema).optional(),
  /** The approver's key, owner and lineage (approval events): second-person approval, checkable. */
  approver: z
    .object({
      keyId: z.string(),
      owner: z.string(),
      root: z.boolean(),
      lineage: z.array(keyAncestorSchema),
    })
    .optional(),
});
export type PolicyPromotion = z.infer<typeof policyPromotionSchema>;

export const policyDeploymentChangedSchema = z.object({
  name: z.string(),
  revision: z.number().int(),
  stable: z.string().optional(),
  candidate: z.string().optional(),
  candidateMode: z.enum(['shadow', 'canary']).optional(),
  percent: z.number().optional(),
  by: z.enum(['job', 'key']).optional(),
  /** promote, shadow, rollback or initial. */
  reason: z.string(),
  actor: z.string(),
  promotionId: z.string().optional(),
});
export type PolicyDeploymentChanged = z.infer<typeof policyDeploymentChangedSchema>;

export const alertDeliverySchema = z.object({
  /** One post (an alert, or a summary of several matches of one rule for one subject). */
  alertId: z.string(),
  channel: z.string(),
  /**
   * delivered: the channel answered 2xx; failed: it did not after every attempt (or refused it);
   * dropped: the bounded queue was full (oldest dropped) or the gateway shut down first;
   * unconfigured: no channel of that name in flowloom.yaml `alerts.channels`.
   */
  outcome: z.enum(['delivered', 'failed', 'dropped', 'unconfigured']),
  format: z.enum(['json', 'slack']).optional(),
  policy: z.string(),
  version: z.string(),
  rule: z.string(),
  mode: z.string(),
  phase: z.enum(['pre_call', 'post_call']).optional(),
  /** The latest matching decision this post stands for. */
  decisionId: z.string(),
  requestId: z.string(),
  keyId: z.string().optional(),
  project: z.string().optional(),
  job: z.string().optional(),
  session: z.string().optional(),
  /** How many matches this post stands for (more than 1: a summary of a rate-limited burst). */
  count: z.number().int().positive(),
  summary: z.boolean(),
  firstAt: z.string(),
  lastAt: z.string(),
  attempts: z.number().int().nonnegative(),
  /** The channel's last HTTP status, when it answered. */
  status: z.number().int().optional(),
  /** Why it was not delivered (never a URL or header value). */
  error: z.string().optional(),
});
export type AlertDelivery = z.infer<typeof alertDeliverySchema>;

export const policyEventPayloadSchemas: Record<string, z.ZodType> = {
  [POLICY_DECISION]: decisionRecordSchema,
  [POLICY_INTERVENTION]: interventionSchema,
  [POLICY_JOB_CHANGED]: jobChangedSchema,
  [POLICY_ALERT_DELIVERY]: alertDeliverySchema,
  [POLICY_VERSION_PUSHED]: policyVersionPushedSchema,
  [POLICY_PROMOTION_REQUESTED]: policyPromotionSchema,
  [POLICY_PROMOTION_APPROVED]: policyPromotionSchema,
  [POLICY_DEPLOYMENT_CHANGED]: policyDeploymentChangedSchema,
};

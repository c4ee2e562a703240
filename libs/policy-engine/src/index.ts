export type { CompiledCondition, ConditionEngine } from './cel/compile-condition.js';
export type { InputValue } from './cel/slots.js';
export {
  diffPolicies,
  type FieldChange,
  formatPolicyDiff,
  type PolicyDiff,
  type RuleChange,
  type RuleMove,
} from './diff.js';
export {
  ACTION_TYPES,
  type ActionClass,
  type ActionType,
  type AlertAction,
  type AllowAction,
  actionClass,
  type BlockAction,
  type CapMaxTokensAction,
  type CustomPattern,
  type PolicyAction,
  type RedactAction,
  type RedactionPattern,
  type RerouteAction,
  type StopJobAction,
  type SuspendKeyAction,
  type ThrottleAction,
} from './document/actions.js';
export { formatDiagnostic, formatDiagnostics, type PolicyDiagnostic } from './document/diagnostics.js';
export {
  compilePolicy,
  type LoadOptions,
  type LoadResult,
  loadPolicy,
  MAX_POLICY_SOURCE_BYTES,
} from './document/load.js';
export type { OnError, PolicyDocument, PolicyRule } from './document/schema.js';
export {
  type CompiledPolicy,
  type CompiledRule,
  type CompileOptions,
  JOB_POLICY_FORBIDDEN_ACTIONS,
  POST_CALL_ACTIONS,
} from './evaluate/compile-policy.js';
export type { AppliedAction, Decision, Outcome, RuleError, RuleTrace, Verdict } from './evaluate/decision.js';
export { type EvaluateOptions, evaluatePolicy } from './evaluate/evaluate.js';
export { explainDecision, ruleInputs } from './explain.js';
export type {
  BudgetFacts,
  CallerFacts,
  EvaluationInput,
  Phase,
  RequestFacts,
  ResponseFacts,
  ResponseStatus,
  SignalInput,
  SignalName,
  SignalScope,
  SignalValues,
} from './input.js';
export { PHASES, RESPONSE_STATUSES, SIGNAL_NAMES, SIGNAL_SCOPES } from './input.js';
export { BUILTIN_PATTERN_NAMES, type BuiltinPatternName } from './redact/builtin-patterns.js';
export { type RedactionResult, redactText } from './redact/redact.js';
export {
  formatReplayReport,
  type OutcomeSummary,
  type ReplayExample,
  type ReplayGaps,
  type ReplayOptions,
  type ReplayRecord,
  type ReplayReport,
  type ReplaySide,
  type ReplayTransition,
  replayDecisions,
} from './replay.js';
export {
  assignCanary,
  CANARY_BUCKETS,
  type CanaryAssignment,
  canaryBucket,
  type Rollout,
  type RolloutMode,
} from './rollout.js';
export { canonicalJson, policyVersionId } from './version.js';

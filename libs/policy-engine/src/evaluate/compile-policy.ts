import type { CheckIssue } from '../cel/check.js';
import { type CompiledCondition, type ConditionEngine, compileCondition } from '../cel/compile-condition.js';
import { isPostCallPath } from '../cel/environment.js';
import { type InputValue, inputsRecordBuilder, SlotTable, type SlotValue } from '../cel/slots.js';
import { type ActionClass, type ActionType, actionClass, DENY_SEVERITY } from '../document/actions.js';
import { type DocumentIssue, issue } from '../document/issues.js';
import type { PolicyDocument, PolicyRule } from '../document/schema.js';
import { PHASES, type Phase } from '../input.js';
import { BucketMemo } from '../rollout.js';
import { policyVersionId } from '../version.js';
import type { RuleTrace } from './decision.js';

export interface CompiledRule {
  readonly rule: PolicyRule;
  /** Position in the document; breaks ties within a priority. */
  readonly index: number;
  readonly condition: CompiledCondition;
  /** Before the call, or after the answer: derived from the paths the condition reads. */
  readonly phase: Phase;
  readonly actionClass: ActionClass;
  /** stop_job 3 > suspend_key 2 > block 1; 0 for other actions. */
  readonly severity: number;
}

export interface CompiledPolicy {
  readonly name: string;
  readonly version: string;
  readonly document: PolicyDocument;
  /** Evaluation order: priority descending, then document order. Both phases; see `phases`. */
  readonly rules: readonly CompiledRule[];
  /** The phases that have rules: `post_call` means the gateway must evaluate it again after each answer. */
  readonly phases: readonly Phase[];
}

export type CompileResult =
  | { readonly ok: true; readonly policy: CompiledPolicy }
  | { readonly ok: false; readonly issues: readonly DocumentIssue[] };

export function conditionIssue(ruleIndex: number, found: CheckIssue): DocumentIssue {
  return { ...issue(['rules', ruleIndex, 'condition'], found.message), exprOffset: found.offset };
}

/** Compiles every condition once; the returned policy is immutable and safe to share. */
export interface CompileOptions {
  /** Default `auto`; `interpreted` runs every condition on @bufbuild/cel (reference semantics, slower). */
  readonly engine?: ConditionEngine;
  /**
   * Actions this use of the policy may not take, each with why (e.g. a job policy, which may only
   * add restrictions: JOB_POLICY_FORBIDDEN_ACTIONS); a rule with one is an issue at its action.
   */
  readonly forbiddenActions?: Readonly<Partial<Record<ActionType, string>>>;
}

/**
 * A job policy (`flowloom run --policy`) is evaluated next to the active bundle for one key, without a
 * second person's approval, so it may only add restrictions. A reroute is refused: it would send the
 * request to a model or deployment the active policies never evaluated.
 */
export const JOB_POLICY_FORBIDDEN_ACTIONS: Readonly<Partial<Record<ActionType, string>>> = {
  reroute:
    'a job policy may only add restrictions, and a reroute would send the request to a model the active policies did not evaluate; use block, throttle, cap_max_tokens, redact, alert, suspend_key or stop_job',
};

/** What still acts once the answer is out: everything else changes or holds the request itself. */
export const POST_CALL_ACTIONS: ReadonlySet<ActionType> = new Set(['alert', 'suspend_key', 'stop_job']);

export function compileDocument(document: PolicyDocument, options: CompileOptions = {}): CompileResult {
  const issues: DocumentIssue[] = [];
  const rules: CompiledRule[] = [];
  // One slot table per phase: each phase's decision reads and records only its own rules' inputs.
  const tables: Record<Phase, SlotTable> = { pre_call: new SlotTable(), post_call: new SlotTable() };
  const slots = (phase: Phase): SlotTable => tables[phase];
  document.rules.forEach((rule, index) => {
    const result = compileCondition(rule.condition, { engine: options.engine ?? 'auto', slots });
    if (!result.ok) {
      for (const found of result.issues) issues.push(conditionIssue(index, found));
      return;
    }
    const forbidden = options.forbiddenActions?.[rule.action.type];
    if (forbidden !== undefined) {
      issues.push(
        issue(['rules', index, 'action'], `action "${rule.action.type}" is not allowed here: ${forbidden}`),
      );
      return;
    }
    const phase = result.condition.phase;
    if (phase === 'post_call' && !POST_CALL_ACTIONS.has(rule.action.type)) {
      issues.push(postCallActionIssue(index, rule, result.condition.reads));
      return;
    }
    const cls = actionClass(rule.action.type);
    rules.push({
      rule,
      index,
      condition: result.condition,
      phase,
      actionClass: cls,
      severity: DENY_SEVERITY[rule.action.type] ?? 0,
    });
  });
  if (issues.length > 0) return { ok: false, issues };
  rules.sort((a, b) => b.rule.priority - a.rule.priority || a.index - b.index);
  const version = policyVersionId(document);
  const policy: CompiledPolicy = Object.freeze({
    name: document.name,
    version,
    document,
    rules: Object.freeze(rules),
    phases: Object.freeze(PHASES.filter((p) => rules.some((r) => r.phase === p))),
  });
  const buckets = new BucketMemo(version);
  runtimes.set(policy, {
    pre_call: newRuntime(rules, 'pre_call', tables.pre_call, buckets),
    post_call: newRuntime(rules, 'post_call', tables.post_call, buckets),
  });
  return { ok: true, policy };
}

function postCallActionIssue(index: number, rule: PolicyRule, reads: readonly string[]): DocumentIssue {
  const after = reads.filter(isPostCallPath);
  return issue(
    ['rules', index, 'action'],
    `${rule.action.type} acts before the call, but the condition reads ${after.join(', ')}, known only after the answer; a rule evaluated after the call can only ${[...POST_CALL_ACTIONS].join(', ')} (to act before the call, compare request.estimated_tokens, request.max_tokens or request.cost instead)`,
  );
}

/**
 * What evaluation reuses: the slot table and its value array, and each rule's two possible
 * error-free traces, built once so a decision allocates only what differs per request.
 */
export interface PolicyRuntime {
  /** The phase's rules, in evaluation order. */
  readonly rules: readonly CompiledRule[];
  readonly slots: SlotTable;
  readonly values: SlotValue[];
  readonly unmatched: readonly RuleTrace[];
  readonly matched: readonly RuleTrace[];
  readonly buckets: BucketMemo;
  readonly inputsRecord: (values: readonly SlotValue[]) => Record<string, InputValue>;
}

const runtimes = new WeakMap<CompiledPolicy, Readonly<Record<Phase, PolicyRuntime>>>();

export function runtimeOf(policy: CompiledPolicy, phase: Phase): PolicyRuntime {
  const runtime = runtimes.get(policy);
  if (runtime === undefined)
    throw new TypeError('not a policy compiled by this engine (use loadPolicy or compilePolicy)');
  return runtime[phase];
}

function newRuntime(
  all: readonly CompiledRule[],
  phase: Phase,
  slots: SlotTable,
  buckets: BucketMemo,
): PolicyRuntime {
  const rules = all.filter((r) => r.phase === phase);
  const trace = (c: CompiledRule, matched: boolean): RuleTrace =>
    Object.freeze({
      id: c.rule.id,
      priority: c.rule.priority,
      action: c.rule.action.type,
      matched,
      reads: c.condition.reads,
      onError: c.rule.onError,
    });
  return {
    rules,
    slots,
    values: new Array<SlotValue>(slots.sources.length),
    unmatched: rules.map((c) => trace(c, false)),
    matched: rules.map((c) => trace(c, true)),
    buckets,
    inputsRecord: inputsRecordBuilder(slots.sources),
  };
}

import type { CheckIssue } from '../cel/check.js';
import { type CompiledCondition, type ConditionEngine, compileCondition } from '../cel/compile-condition.js';
import { type InputValue, inputsRecordBuilder, SlotTable, type SlotValue } from '../cel/slots.js';
import { type ActionClass, actionClass, DENY_SEVERITY } from '../document/actions.js';
import { type DocumentIssue, issue } from '../document/issues.js';
import type { PolicyDocument, PolicyRule } from '../document/schema.js';
import { BucketMemo } from '../rollout.js';
import { policyVersionId } from '../version.js';
import type { RuleTrace } from './decision.js';

export interface CompiledRule {
  readonly rule: PolicyRule;
  /** Position in the document; breaks ties within a priority. */
  readonly index: number;
  readonly condition: CompiledCondition;
  readonly actionClass: ActionClass;
  /** stop_job 3 > suspend_key 2 > block 1; 0 for other actions. */
  readonly severity: number;
}

export interface CompiledPolicy {
  readonly name: string;
  readonly version: string;
  readonly document: PolicyDocument;
  /** Evaluation order: priority descending, then document order. */
  readonly rules: readonly CompiledRule[];
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
}

export function compileDocument(document: PolicyDocument, options: CompileOptions = {}): CompileResult {
  const issues: DocumentIssue[] = [];
  const rules: CompiledRule[] = [];
  const slots = new SlotTable();
  document.rules.forEach((rule, index) => {
    const result = compileCondition(rule.condition, { engine: options.engine ?? 'auto', slots });
    if (!result.ok) {
      for (const found of result.issues) issues.push(conditionIssue(index, found));
      return;
    }
    const cls = actionClass(rule.action.type);
    rules.push({
      rule,
      index,
      condition: result.condition,
      actionClass: cls,
      severity: DENY_SEVERITY[rule.action.type] ?? 0,
    });
  });
  if (issues.length > 0) return { ok: false, issues };
  rules.sort((a, b) => b.rule.priority - a.rule.priority || a.index - b.index);
  const policy: CompiledPolicy = Object.freeze({
    name: document.name,
    version: policyVersionId(document),
    document,
    rules: Object.freeze(rules),
  });
  runtimes.set(policy, newRuntime(policy.version, rules, slots));
  return { ok: true, policy };
}

/**
 * What evaluation reuses: the slot table and its value array, and each rule's two possible
 * error-free traces, built once so a decision allocates only what differs per request.
 */
export interface PolicyRuntime {
  readonly slots: SlotTable;
  readonly values: SlotValue[];
  readonly unmatched: readonly RuleTrace[];
  readonly matched: readonly RuleTrace[];
  readonly buckets: BucketMemo;
  readonly inputsRecord: (values: readonly SlotValue[]) => Record<string, InputValue>;
}

const runtimes = new WeakMap<CompiledPolicy, PolicyRuntime>();

export function runtimeOf(policy: CompiledPolicy): PolicyRuntime {
  const runtime = runtimes.get(policy);
  if (runtime === undefined)
    throw new TypeError('not a policy compiled by this engine (use loadPolicy or compilePolicy)');
  return runtime;
}

function newRuntime(version: string, rules: readonly CompiledRule[], slots: SlotTable): PolicyRuntime {
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
    slots,
    values: new Array<SlotValue>(slots.sources.length),
    unmatched: rules.map((c) => trace(c, false)),
    matched: rules.map((c) => trace(c, true)),
    buckets: new BucketMemo(version),
    inputsRecord: inputsRecordBuilder(slots.sources),
  };
}

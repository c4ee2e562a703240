import { newScratch } from '../cel/interpreted.js';
import type { EvaluationInput, Phase } from '../input.js';
import { assignCanary, type CanaryAssignment, type Rollout } from '../rollout.js';
import { type CompiledPolicy, type CompiledRule, runtimeOf } from './compile-policy.js';
import type { Decision, Outcome, RuleError, RuleTrace } from './decision.js';
import { DEFAULT_ALLOW, outranksDeny, resolveOutcome } from './resolve.js';

export interface EvaluateOptions {
  /** Default: enforce. */
  readonly rollout?: Rollout;
  /**
   * Default `pre_call`: the rules that decide before the call. `post_call`: the rules that read the
   * answer (`input.response`), evaluated once it is known.
   */
  readonly phase?: Phase;
}

const ENFORCE: Rollout = { mode: 'enforce' };

// Evaluation is synchronous and never re-entered, so one scratch (and each policy's slot array) serves every call.
const scratch = newScratch();

/**
 * Evaluates every rule (so the decision explains all of them), resolves conflicts and applies the
 * rollout mode. Pure: reads no clock; time comes in as `input.now`, and the caller times the call.
 */
export function evaluatePolicy(
  policy: CompiledPolicy,
  input: EvaluationInput,
  options: EvaluateOptions = {},
): Decision {
  const phase = options.phase ?? 'pre_call';
  const runtime = runtimeOf(policy, phase);
  const values = runtime.values;
  runtime.slots.fill(input, values);
  scratch.bindings = undefined;

  const rules = runtime.rules;
  const traces: RuleTrace[] = [];
  const errors: RuleError[] = [];
  let deny: CompiledRule | undefined;
  let exclusive: CompiledRule | undefined;
  const combinable: CompiledRule[] = [];

  for (let r = 0; r < rules.length; r++) {
    const compiled = rules[r]!;
    let matched: boolean;
    try {
      matched = compiled.condition.evaluate(values, input, scratch);
      traces.push(matched ? runtime.matched[r]! : runtime.unmatched[r]!);
    } catch (err) {
      const { rule } = compiled;
      const message = err instanceof Error ? err.message : String(err);
      matched = rule.onError === 'closed';
      errors.push({
        ruleId: rule.id,
        message,
        onError: rule.onError,
        treatedAs: matched ? 'match' : 'no_match',
      });
      traces.push({ ...(matched ? runtime.matched[r]! : runtime.unmatched[r]!), error: message });
    }
    if (!matched) continue;
    if (compiled.actionClass === 'deny') {
      if (outranksDeny(compiled, deny)) deny = compiled;
    } else if (compiled.actionClass === 'exclusive') {
      exclusive ??= compiled;
    } else {
      combinable.push(compiled);
    }
  }

  const intended = resolveOutcome(policy.name, phase, deny, exclusive, combinable);
  const rollout = options.rollout ?? ENFORCE;
  let canary: CanaryAssignment | undefined;
  let enforced = rollout.mode === 'enforce';
  if (rollout.mode === 'canary') {
    canary = assignCanary(policy.version, rollout, input, runtime.buckets);
    enforced = canary.enforced;
  }
  const effective: Outcome = enforced ? intended : DEFAULT_ALLOW;
  // One literal with every key keeps decisions one shape; absent optionals are undefined (dropped by JSON).
  return {
    policy: policy.name,
    version: policy.version,
    phase,
    mode: rollout.mode,
    canary,
    enforced,
    intended,
    effective,
    rules: traces,
    inputs: runtime.inputsRecord(values),
    errors,
    evaluatedAt: input.now,
  };
}

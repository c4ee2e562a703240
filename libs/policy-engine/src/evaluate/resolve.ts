import type { CapMaxTokensAction } from '../document/actions.js';
import type { Phase } from '../input.js';
import type { CompiledRule } from './compile-policy.js';
import type { AppliedAction, Outcome, Verdict } from './decision.js';

/**
 * Conflict resolution, given the matched rules in evaluation order (see README):
 * - any deny action (block, suspend_key, stop_job) wins; the most severe one, then priority, then order;
 * - otherwise the first matching exclusive rule (allow, throttle, reroute) in evaluation order, i.e. the
 *   highest priority and, within it, the earliest in the document;
 * - otherwise allow by default;
 * - alerts always apply; redactions and the smallest token cap apply unless the request is refused.
 */

export const DEFAULT_ALLOW: Outcome = Object.freeze({
  verdict: 'allow',
  decidedBy: null,
  actions: Object.freeze([]),
});

const REFUSAL_SUFFIX: Readonly<Record<string, string>> = {
  block: '',
  suspend_key: '; the API key is suspended',
  stop_job: '; the job is stopped',
};

/** After the call nothing is refused: the answer is out, the key or the job is what is acted on. */
const AFTER_CALL_EFFECT: Readonly<Record<string, string>> = {
  suspend_key: 'the API key is suspended',
  stop_job: 'the job is stopped',
};

export function resolveOutcome(
  policyName: string,
  phase: Phase,
  deny: CompiledRule | undefined,
  exclusive: CompiledRule | undefined,
  combinable: readonly CompiledRule[],
): Outcome {
  const primary = deny ?? exclusive;
  if (primary === undefined && combinable.length === 0) return DEFAULT_ALLOW;
  const refused = deny !== undefined;
  const actions: AppliedAction[] = [];
  if (primary !== undefined) actions.push({ ruleId: primary.rule.id, action: primary.rule.action });
  let cap: { ruleId: string; action: CapMaxTokensAction } | undefined;
  for (const c of combinable) {
    const action = c.rule.action;
    if (action.type === 'alert') actions.push({ ruleId: c.rule.id, action });
    else if (refused) continue;
    else if (action.type === 'redact') actions.push({ ruleId: c.rule.id, action });
    else if (action.type === 'cap_max_tokens' && (cap === undefined || action.value < cap.action.value)) {
      cap = { ruleId: c.rule.id, action };
    }
  }
  if (cap !== undefined) actions.push(cap);
  const verdict = (primary?.rule.action.type ?? 'allow') as Verdict;
  const base = { verdict, decidedBy: primary?.rule.id ?? null, actions };
  if (deny !== undefined) {
    const type = deny.rule.action.type;
    const message =
      deny.rule.message ??
      (phase === 'post_call'
        ? `after an answer, policy "${policyName}" (rule "${deny.rule.id}") acted: ${AFTER_CALL_EFFECT[type] ?? type}`
        : `request refused by policy "${policyName}" (rule "${deny.rule.id}")${REFUSAL_SUFFIX[type] ?? ''}`);
    return { ...base, message };
  }
  const message = primary?.rule.message;
  return message === undefined ? base : { ...base, message };
}

/** Whether `candidate` should replace `current` as the deny rule: heavier first, then evaluation order. */
export function outranksDeny(candidate: CompiledRule, current: CompiledRule | undefined): boolean {
  return current === undefined || candidate.severity > current.severity;
}

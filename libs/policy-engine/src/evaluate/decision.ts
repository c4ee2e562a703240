import type { InputValue } from '../cel/slots.js';
import type { ActionType, PolicyAction } from '../document/actions.js';
import type { OnError } from '../document/schema.js';
import type { Phase } from '../input.js';
import type { CanaryAssignment, RolloutMode } from '../rollout.js';

/** The exclusive outcome of a decision; combinable actions ride along in `actions`. */
export type Verdict = 'allow' | 'block' | 'throttle' | 'reroute' | 'suspend_key' | 'stop_job';

export interface AppliedAction {
  readonly ruleId: string;
  readonly action: PolicyAction;
}

export interface Outcome {
  readonly verdict: Verdict;
  /** The rule that decided the verdict; null when none matched and the default (allow) applies. */
  readonly decidedBy: string | null;
  /** What to carry out: the deciding action first, then alerts and redactions in rule order, then at most one token cap. */
  readonly actions: readonly AppliedAction[];
  /** For a refused caller (block, suspend_key, stop_job; after the call, what was done), or a deciding rule's own message. */
  readonly message?: string;
}

export interface RuleTrace {
  readonly id: string;
  readonly priority: number;
  readonly action: ActionType;
  /** The condition held, or failed to evaluate under onError: closed. */
  readonly matched: boolean;
  /** The input paths the condition references; their values are in `Decision.inputs`. */
  readonly reads: readonly string[];
  /** Set when the condition failed to evaluate. */
  readonly error?: string;
  readonly onError: OnError;
}

export interface RuleError {
  readonly ruleId: string;
  readonly message: string;
  readonly onError: OnError;
  /** closed → the rule was treated as matching, open → as not matching. */
  readonly treatedAs: 'match' | 'no_match';
}

export interface Decision {
  readonly policy: string;
  readonly version: string;
  /** Before the call, or after the answer: only that phase's rules are in `rules` and `inputs`. */
  readonly phase: Phase;
  readonly mode: RolloutMode;
  readonly canary?: CanaryAssignment;
  /** Whether `effective` carries out `intended` (always in enforce, never in shadow). */
  readonly enforced: boolean;
  /** What the policy says. */
  readonly intended: Outcome;
  /** What happens: `intended` when enforced, a plain allow otherwise. */
  readonly effective: Outcome;
  /** Every rule, in evaluation order (priority descending, then document order). */
  readonly rules: readonly RuleTrace[];
  /** The value of every input path the policy's conditions reference (credentials redacted, absent → null). */
  readonly inputs: Readonly<Record<string, InputValue>>;
  readonly errors: readonly RuleError[];
  /** The input's `now`, when given. */
  readonly evaluatedAt?: number;
}

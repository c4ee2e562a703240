import type { DecisionOutcome, DecisionRecord, PolicyEvaluation, Threshold } from '@flowloom/contracts';
import {
  type CompiledPolicy,
  type Decision,
  type EvaluationInput,
  evaluatePolicy,
  type Outcome,
  type Phase,
  type PolicyAction,
  type PolicyRule,
  type Rollout,
} from '@flowloom/policy-engine';
import type { RequestContext } from './context.js';
import type { GateFacts } from './policy-gate.js';

/**
 * The gateway's decision records: every active policy evaluated in one phase (before the call, or
 * after the answer), merged into what happens and what was intended, as the event's record.
 */

export interface Lane {
  readonly role: 'stable' | 'candidate';
  readonly policy: CompiledPolicy;
  readonly rollout: Rollout;
  readonly rules: ReadonlyMap<string, PolicyRule>;
  readonly thresholds: ReadonlyMap<string, readonly Threshold[]>;
}

export interface ActivePolicy {
  readonly name: string;
  readonly stable?: Lane;
  readonly candidate?: Lane;
}

/** One policy version's decision on a request. */
export interface Evaluated {
  readonly lane: Lane;
  readonly name: string;
  readonly decision: Decision;
  /** A stable version evaluated only for the record while its canary candidate is enforced. */
  readonly superseded: boolean;
}

/**
 * Evaluates every active policy in one phase: a candidate in its rollout mode, and its stable version
 * beside it (only recorded, as a shadow, when the canary enforces the candidate for this subject).
 */
export function evaluateLanes(
  active: readonly ActivePolicy[],
  input: EvaluationInput,
  phase: Phase,
): { evaluated: Evaluated[]; evaluationMicros: number } {
  const started = performance.now();
  const evaluated: Evaluated[] = [];
  for (const p of active) {
    if (p.candidate) {
      const candidate = evaluatePolicy(p.candidate.policy, input, { rollout: p.candidate.rollout, phase });
      evaluated.push({ lane: p.candidate, name: p.name, decision: candidate, superseded: false });
      if (p.stable) {
        const superseded = candidate.enforced;
        const rollout: Rollout = superseded ? { mode: 'shadow' } : p.stable.rollout;
        const stable = evaluatePolicy(p.stable.policy, input, { rollout, phase });
        evaluated.push({ lane: p.stable, name: p.name, decision: stable, superseded });
      }
    } else if (p.stable) {
      evaluated.push({
        lane: p.stable,
        name: p.name,
        decision: evaluatePolicy(p.stable.policy, input, { rollout: p.stable.rollout, phase }),
        superseded: false,
      });
    }
  }
  // performance.now() is in milliseconds: one decimal of a microsecond is plenty.
  return { evaluated, evaluationMicros: Math.round((performance.now() - started) * 10_000) / 10 };
}

/** One decision record (before or after the call) from the evaluations of its phase. */
export function decisionRecordOf(
  ctx: RequestContext,
  operation: GateFacts['operation'],
  model: string,
  evaluated: readonly Evaluated[],
  decisionId: string,
  now: number,
  evaluationMicros: number,
): { record: DecisionRecord; effective: Merged } {
  const effective = merge(evaluated, 'effective');
  const intended = merge(
    evaluated.filter((e) => !e.superseded),
    'intended',
  );
  const decidingSide = effective.by ? effective : intended.by ? intended : undefined;
  const deciding = decidingSide?.by ?? evaluated[0];
  const record: DecisionRecord = {
    decisionId,
    requestId: ctx.requestId,
    at: new Date(now).toISOString(),
    phase: deciding?.decision.phase ?? 'pre_call',
    keyId: ctx.key.id,
    owner: ctx.key.owner,
    ...(projectOf(ctx) ? { project: projectOf(ctx) } : {}),
    ...(ctx.tags.job ? { job: ctx.tags.job } : {}),
    ...(ctx.tags.session ? { session: ctx.tags.session } : {}),
    api: ctx.api,
    operation,
    model,
    ...(deciding
      ? {
          policy: deciding.name,
          version: deciding.decision.version,
          mode: deciding.decision.mode,
          rule: decidingSide
            ? (decidingSide.outcome.decidedBy ?? decidingSide.actions[0]?.ruleId ?? null)
            : null,
        }
      : {}),
    verdict: effective.outcome.verdict,
    actions: effective.actions.map(recordAction),
    intendedVerdict: intended.outcome.verdict,
    intendedActions: intended.actions.map(recordAction),
    enforced: sameOutcome(effective, intended),
    ...(effective.outcome.message ? { message: effective.outcome.message } : {}),
    evaluations: evaluated.map(evaluationRecord),
    evaluationMicros,
  };
  return { record, effective };
}

export interface Merged {
  outcome: DecisionOutcome;
  /** The evaluation that decided the verdict; undefined for a plain allow. */
  by: Evaluated | undefined;
  actions: Array<{ ruleId: string; policy: string; action: PolicyAction }>;
}

const SEVERITY: Readonly<Record<string, number>> = { block: 1, suspend_key: 2, stop_job: 3 };

/**
 * Several policies (and a stable version next to its candidate) each decide; what happens is the
 * strongest refusal if any (stop_job > suspend_key > block), else the first throttle or reroute, plus
 * every alert and redaction and the smallest token cap.
 */
function merge(evaluated: readonly Evaluated[], side: 'effective' | 'intended'): Merged {
  let by: Evaluated | undefined;
  let severity = 0;
  for (const e of evaluated) {
    const s = SEVERITY[e.decision[side].verdict] ?? 0;
    if (s > severity) {
      severity = s;
      by = e;
    }
  }
  if (!by) by = evaluated.find((e) => e.decision[side].verdict !== 'allow');
  const refused = severity > 0;
  const actions: Merged['actions'] = [];
  if (by) {
    const first = by.decision[side].actions[0];
    if (first) actions.push({ ruleId: first.ruleId, policy: by.name, action: first.action });
  }
  let cap: Merged['actions'][number] | undefined;
  for (const e of evaluated) {
    for (const a of e.decision[side].actions) {
      const type = a.action.type;
      if (type === 'alert') actions.push({ ruleId: a.ruleId, policy: e.name, action: a.action });
      else if (refused) continue;
      else if (type === 'redact') actions.push({ ruleId: a.ruleId, policy: e.name, action: a.action });
      else if (
        type === 'cap_max_tokens' &&
        (!cap || (cap.action.type === 'cap_max_tokens' && a.action.value < cap.action.value))
      )
        cap = { ruleId: a.ruleId, policy: e.name, action: a.action };
    }
  }
  if (cap) actions.push(cap);
  const outcome = by?.decision[side];
  if (!by) {
    const plain = evaluated.some((e) => e.decision[side].actions.length > 0)
      ? evaluated.find((e) => e.decision[side].actions.length > 0)
      : undefined;
    return {
      outcome: { verdict: 'allow', decidedBy: null, actions: actions.map(stripPolicy) },
      by: plain,
      actions,
    };
  }
  return {
    outcome: {
      verdict: outcome!.verdict,
      decidedBy: outcome!.decidedBy,
      actions: actions.map(stripPolicy),
      ...(outcome!.message ? { message: outcome!.message } : {}),
    },
    by,
    actions,
  };
}

const stripPolicy = (a: { ruleId: string; action: PolicyAction }) => ({
  ruleId: a.ruleId,
  action: { ...a.action },
});

/** A policy action as a plain record (the event schema's shape). */
const recordAction = (a: { ruleId: string; policy: string; action: PolicyAction }) => ({
  ruleId: a.ruleId,
  policy: a.policy,
  action: { ...a.action },
});

function sameOutcome(a: Merged, b: Merged): boolean {
  if (a.outcome.verdict !== b.outcome.verdict || a.actions.length !== b.actions.length) return false;
  return a.actions.every(
    (x, i) => x.ruleId === b.actions[i]?.ruleId && x.action.type === b.actions[i]?.action.type,
  );
}

export function isIntervention(outcome: Outcome): boolean {
  return outcome.verdict !== 'allow' || outcome.actions.length > 0;
}

function evaluationRecord(e: Evaluated): PolicyEvaluation {
  const d = e.decision;
  const matched: string[] = [];
  for (const r of d.rules) if (r.matched) matched.push(r.id);
  return {
    policy: e.name,
    version: d.version,
    role: e.lane.role,
    mode: d.mode,
    enforced: d.enforced,
    ...(d.canary ? { canary: { ...d.canary } } : {}),
    intended: outcomeRecord(d.intended),
    effective: outcomeRecord(d.effective),
    ruleCount: d.rules.length,
    matched,
    errors: d.errors.map((x) => ({ ...x })),
    // +Infinity (no budget) serializes as null, as the engine documents.
    inputs: d.inputs,
  };
}

function outcomeRecord(o: Outcome): DecisionOutcome {
  return {
    verdict: o.verdict,
    decidedBy: o.decidedBy,
    actions: o.actions.map((a) => ({ ruleId: a.ruleId, action: { ...a.action } })),
    ...(o.message ? { message: o.message } : {}),
  };
}

export function projectOf(ctx: RequestContext): string | undefined {
  return ctx.tags.project ?? ctx.key.project ?? undefined;
}

/** Why a rule matched, for a caller, an event or an alert: its description, else its condition. */
export function describeRule(rule: PolicyRule | undefined): string {
  if (!rule) return 'a policy rule matched';
  return rule.description ?? `its condition held (${rule.condition})`;
}

import type { PolicyAction } from './document/actions.js';
import type { CompiledPolicy } from './evaluate/compile-policy.js';
import type { Outcome, Verdict } from './evaluate/decision.js';
import { evaluatePolicy } from './evaluate/evaluate.js';
import type { EvaluationInput } from './input.js';
import { canonicalJson } from './version.js';

export interface ReplayRecord {
  /** e.g. the recorded request or decision id, echoed in examples. */
  readonly id?: string;
  readonly input: EvaluationInput;
}

export interface ReplayOptions {
  /** Examples kept per transition; default 3. */
  readonly maxExamples?: number;
}

export interface OutcomeSummary {
  readonly verdict: Verdict;
  readonly decidedBy: string | null;
  readonly actions: readonly PolicyAction[];
}

export interface ReplayExample {
  readonly index: number;
  readonly id?: string;
  readonly baseline: OutcomeSummary;
  readonly candidate: OutcomeSummary;
}

/** Decisions that changed from one verdict to another (same verdict: its actions changed, e.g. a new alert). */
export interface ReplayTransition {
  readonly from: Verdict;
  readonly to: Verdict;
  readonly count: number;
  readonly examples: readonly ReplayExample[];
}

export interface ReplaySide {
  readonly policy: string;
  readonly version: string;
  readonly verdicts: Readonly<Record<Verdict, number>>;
  /** Decisions carrying at least one action of each combinable type. */
  readonly withAction: Readonly<Record<'alert' | 'redact' | 'cap_max_tokens', number>>;
  /** Decisions in which some rule failed to evaluate. */
  readonly withErrors: number;
}

export interface ReplayReport {
  readonly total: number;
  readonly changed: number;
  readonly unchanged: number;
  readonly baseline: ReplaySide;
  readonly candidate: ReplaySide;
  /** Most frequent first. */
  readonly transitions: readonly ReplayTransition[];
}

const VERDICTS: readonly Verdict[] = ['allow', 'block', 'throttle', 'reroute', 'suspend_key', 'stop_job'];

/**
 * Evaluates recorded inputs against two policies and counts how the intended decisions change.
 * Intended, not effective: the question is what the policy says, whatever its rollout mode.
 * A decision changes when its verdict or any action (with its parameters) differs; rule ids alone do not count.
 */
export function replayDecisions(
  records: Iterable<ReplayRecord>,
  baseline: CompiledPolicy,
  candidate: CompiledPolicy,
  options: ReplayOptions = {},
): ReplayReport {
  const maxExamples = options.maxExamples ?? 3;
  const before = newSide(baseline);
  const after = newSide(candidate);
  const transitions = new Map<
    string,
    { from: Verdict; to: Verdict; count: number; examples: ReplayExample[] }
  >();
  let total = 0;
  let changed = 0;
  for (const record of records) {
    const index = total++;
    const a = evaluatePolicy(baseline, record.input);
    const b = evaluatePolicy(candidate, record.input);
    tally(before, a.intended, a.errors.length);
    tally(after, b.intended, b.errors.length);
    if (signature(a.intended) === signature(b.intended)) continue;
    changed++;
    const key = `${a.intended.verdict}->${b.intended.verdict}`;
    let t = transitions.get(key);
    if (t === undefined) {
      t = { from: a.intended.verdict, to: b.intended.verdict, count: 0, examples: [] };
      transitions.set(key, t);
    }
    t.count++;
    if (t.examples.length < maxExamples) {
      t.examples.push({
        index,
        ...(record.id === undefined ? {} : { id: record.id }),
        baseline: summary(a.intended),
        candidate: summary(b.intended),
      });
    }
  }
  const sorted = [...transitions.values()].sort(
    (x, y) => y.count - x.count || `${x.from}${x.to}`.localeCompare(`${y.from}${y.to}`),
  );
  return {
    total,
    changed,
    unchanged: total - changed,
    baseline: before,
    candidate: after,
    transitions: sorted,
  };
}

interface MutableSide {
  policy: string;
  version: string;
  verdicts: Record<Verdict, number>;
  withAction: Record<'alert' | 'redact' | 'cap_max_tokens', number>;
  withErrors: number;
}

function newSide(policy: CompiledPolicy): MutableSide {
  const verdicts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  return {
    policy: policy.name,
    version: policy.version,
    verdicts,
    withAction: { alert: 0, redact: 0, cap_max_tokens: 0 },
    withErrors: 0,
  };
}

function tally(side: MutableSide, outcome: Outcome, errors: number): void {
  side.verdicts[outcome.verdict]++;
  if (errors > 0) side.withErrors++;
  const seen = new Set(outcome.actions.map((a) => a.action.type));
  for (const type of ['alert', 'redact', 'cap_max_tokens'] as const)
    if (seen.has(type)) side.withAction[type]++;
}

function signature(outcome: Outcome): string {
  return `${outcome.verdict}|${canonicalJson(outcome.actions.map((a) => a.action))}`;
}

function summary(outcome: Outcome): OutcomeSummary {
  return {
    verdict: outcome.verdict,
    decidedBy: outcome.decidedBy,
    actions: outcome.actions.map((a) => a.action),
  };
}

/** The text `flowloom policy replay` prints. */
export function formatReplayReport(report: ReplayReport): string {
  const lines = [
    `replayed ${report.total} decisions: ${report.changed} would change, ${report.unchanged} unchanged`,
    `  baseline  ${report.baseline.policy}@${report.baseline.version.slice(0, 12)}: ${counts(report.baseline)}`,
    `  candidate ${report.candidate.policy}@${report.candidate.version.slice(0, 12)}: ${counts(report.candidate)}`,
  ];
  for (const t of report.transitions) {
    lines.push(`  ${t.from} -> ${t.to}: ${t.count}`);
    for (const e of t.examples) {
      const label = e.id ?? `#${e.index}`;
      lines.push(
        `      e.g. ${label}: ${e.baseline.decidedBy ?? 'default'} -> ${e.candidate.decidedBy ?? 'default'}`,
      );
    }
  }
  return lines.join('\n');
}

function counts(side: ReplaySide): string {
  return VERDICTS.filter((v) => side.verdicts[v] > 0)
    .map((v) => `${v} ${side.verdicts[v]}`)
    .join(', ');
}

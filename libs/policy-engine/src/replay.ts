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
  /**
   * The paths the policies active when it was recorded read. A gateway gathers signals, budget and
   * headers only when some active policy reads them, so these tell "not gathered" from "absent"
   * (no budget applies, no such header). Without them, an absent section counts as not gathered.
   */
  readonly read?: readonly string[];
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

/** Recorded decisions that lack inputs the candidate reads: the candidate saw those as missing. */
export interface ReplayGaps {
  /** Decisions lacking at least one such path. */
  readonly decisions: number;
  /** Per path, most frequent first. */
  readonly paths: ReadonlyArray<{ readonly path: string; readonly decisions: number }>;
}

export interface ReplayReport {
  readonly total: number;
  readonly changed: number;
  readonly unchanged: number;
  readonly baseline: ReplaySide;
  readonly candidate: ReplaySide;
  /** Most frequent first. */
  readonly transitions: readonly ReplayTransition[];
  /** When `decisions` > 0 the comparison is incomplete: those were replayed without what the candidate reads. */
  readonly missingInputs: ReplayGaps;
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
  const gathered = onDemandReads(candidate);
  const missingPaths = new Map<string, number>();
  let missingDecisions = 0;
  for (const record of records) {
    const index = total++;
    let lacking = false;
    for (const [section, paths] of gathered) {
      if (wasGathered(record, section)) continue;
      lacking = true;
      for (const path of paths) missingPaths.set(path, (missingPaths.get(path) ?? 0) + 1);
    }
    if (lacking) missingDecisions++;
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
    missingInputs: {
      decisions: missingDecisions,
      paths: [...missingPaths]
        .map(([path, decisions]) => ({ path, decisions }))
        .sort((x, y) => y.decisions - x.decisions || x.path.localeCompare(y.path)),
    },
  };
}

/** Parts of the input a gateway gathers only when an active policy reads them (see ReplayRecord.read). */
type OnDemand = 'signals' | 'signals per subject' | 'budget' | 'request.headers';

/** `signals.job…`, `signals.session…`, `signals.key…`: gathered only when a policy reads one of them. */
const SCOPED_SIGNAL = /^signals\.(job|session|key)(\.|$)/;

function sectionOf(path: string): OnDemand | undefined {
  if (SCOPED_SIGNAL.test(path)) return 'signals per subject';
  if (path.startsWith('signals.')) return 'signals';
  if (path.startsWith('budget.')) return 'budget';
  if (path.startsWith('request.headers')) return 'request.headers';
  return undefined;
}

/** The candidate's reads of on-demand sections, by section. */
function onDemandReads(policy: CompiledPolicy): Map<OnDemand, string[]> {
  const out = new Map<OnDemand, string[]>();
  for (const rule of policy.rules)
    for (const path of rule.condition.reads) {
      const section = sectionOf(path);
      if (section === undefined) continue;
      const paths = out.get(section) ?? [];
      if (!paths.includes(path)) paths.push(path);
      out.set(section, paths);
    }
  return out;
}

function wasGathered(record: ReplayRecord, section: OnDemand): boolean {
  const present =
    section === 'signals per subject'
      ? // Every request has a key: its window is there whenever the per-subject signals were gathered.
        record.input.signals?.key !== undefined
      : section === 'signals'
        ? record.input.signals !== undefined
        : section === 'budget'
          ? record.input.budget !== undefined
          : record.input.request.headers !== undefined;
  return present || (record.read?.some((path) => sectionOf(path) === section) ?? false);
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
  const gaps = report.missingInputs;
  if (gaps.decisions > 0) {
    const paths = gaps.paths.map((p) => `${p.path} ${p.decisions}`).join(', ');
    lines.push(
      `  incomplete: ${gaps.decisions} of ${report.total} decisions were recorded without inputs the candidate reads (${paths}); the candidate saw them as missing (signals 0, no budget, no headers), so these counts may miss changes`,
    );
  }
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

import { isPostCallPath } from './cel/environment.js';
import type { PolicyAction } from './document/actions.js';
import type { CompiledPolicy } from './evaluate/compile-policy.js';
import type { Decision, Outcome, Verdict } from './evaluate/decision.js';
import { evaluatePolicy } from './evaluate/evaluate.js';
import { DEFAULT_ALLOW } from './evaluate/resolve.js';
import type { EvaluationInput, Phase } from './input.js';
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
  /**
   * Whether the request got an answer. true: `input.response` holds its usage and cost, and post-call
   * rules are replayed on it; false: refused or failed before any answer, so no post-call rule would
   * have run; absent: not known (recorded before answers were recorded): when `input.response` is
   * absent too, the answer's facts count as missing for post-call rules.
   */
  readonly answered?: boolean;
  /**
   * Inputs known to be absent from this record whatever the policies read (paths or their prefixes,
   * e.g. `request.headers`, `signals`): a record rebuilt from a request event rather than a decision
   * lacks what only a decision gathers. A version reading one of them counts it as missing.
   */
  readonly missing?: readonly string[];
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
  readonly phase: Phase;
  readonly id?: string;
  readonly baseline: OutcomeSummary;
  readonly candidate: OutcomeSummary;
}

/** Decisions that changed from one verdict to another (same verdict: its actions changed, e.g. a new alert). */
export interface ReplayTransition {
  /** Before the call, or after the answer (post-call rules replayed on the recorded usage and cost). */
  readonly phase: Phase;
  readonly from: Verdict;
  readonly to: Verdict;
  readonly count: number;
  readonly examples: readonly ReplayExample[];
}

export interface ReplaySide {
  readonly policy: string;
  readonly version: string;
  /** Verdicts before the call, one per recorded request. */
  readonly verdicts: Readonly<Record<Verdict, number>>;
  /** Verdicts after the answer, one per answered request (all zero when neither version has post-call rules). */
  readonly afterCall: Readonly<Record<Verdict, number>>;
  /** Decisions (of either phase) carrying at least one action of each combinable type. */
  readonly withAction: Readonly<Record<'alert' | 'redact' | 'cap_max_tokens', number>>;
  /** Decisions in which some rule failed to evaluate. */
  readonly withErrors: number;
}

/**
 * Recorded decisions that lack inputs the baseline or the candidate reads: that version saw them as
 * missing (signals 0, no budget, no headers, no answer), so its decisions there may not be what it
 * would have decided.
 */
export interface ReplayGaps {
  /** Decisions lacking at least one such path. */
  readonly decisions: number;
  /** Per path, most frequent first, with the versions that read it. */
  readonly paths: ReadonlyArray<{
    readonly path: string;
    readonly decisions: number;
    readonly readBy: ReadonlyArray<'baseline' | 'candidate'>;
  }>;
}

export interface ReplayReport {
  /** Decisions replayed: one per recorded request before the call, plus `afterCall`. */
  readonly total: number;
  /** Of `total`, decisions after the answer (when either version has post-call rules). */
  readonly afterCall: number;
  /**
   * Of `afterCall`, those replayed on an answer the candidate would not have got as recorded: before
   * the call it would have rerouted, redacted or capped the request otherwise than the baseline. The
   * recorded answer stands in for the one it would have got, so these post-call outcomes are estimates.
   */
  readonly approximateAfterCall: number;
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
  const transitions = new Map<string, MutableTransition>();
  let total = 0;
  let afterCall = 0;
  let approximateAfterCall = 0;
  let changed = 0;
  let requests = 0;
  const reads = allReads(baseline, candidate);
  const gathered = onDemandReads(reads);
  const missingPaths = new Map<string, number>();
  let missingDecisions = 0;
  const postCall = baseline.phases.includes('post_call') || candidate.phases.includes('post_call');
  const compare = (index: number, id: string | undefined, phase: Phase, a: Judged, b: Judged): void => {
    total++;
    tally(before, phase, a);
    tally(after, phase, b);
    if (signature(a.outcome) === signature(b.outcome)) return;
    changed++;
    const key = `${phase}:${a.outcome.verdict}->${b.outcome.verdict}`;
    let t = transitions.get(key);
    if (t === undefined) {
      t = { phase, from: a.outcome.verdict, to: b.outcome.verdict, count: 0, examples: [] };
      transitions.set(key, t);
    }
    t.count++;
    if (t.examples.length < maxExamples) {
      t.examples.push({
        index,
        phase,
        ...(id === undefined ? {} : { id }),
        baseline: summary(a.outcome),
        candidate: summary(b.outcome),
      });
    }
  };
  for (const record of records) {
    const index = requests++;
    const lacking = new Set<string>();
    for (const [section, paths] of gathered) {
      if (wasGathered(record, section)) continue;
      for (const path of paths.keys()) lacking.add(path);
    }
    if (record.missing)
      for (const path of reads.keys())
        if (record.missing.some((prefix) => within(path, prefix))) lacking.add(path);
    for (const path of lacking) missingPaths.set(path, (missingPaths.get(path) ?? 0) + 1);
    if (lacking.size > 0) missingDecisions++;
    const a = judged(evaluatePolicy(baseline, record.input));
    const b = judged(evaluatePolicy(candidate, record.input));
    compare(index, record.id, 'pre_call', a, b);
    if (!postCall || record.input.response === undefined) continue;
    // Each version acts after an answer only if it let the request through; the answer replayed is the recorded one.
    afterCall++;
    if (!REFUSALS.has(b.outcome.verdict) && reshaping(a.outcome) !== reshaping(b.outcome))
      approximateAfterCall++;
    compare(
      index,
      record.id,
      'post_call',
      afterAnswer(baseline, record, a),
      afterAnswer(candidate, record, b),
    );
  }
  const sorted = [...transitions.values()].sort(
    (x, y) => y.count - x.count || `${x.phase}${x.from}${x.to}`.localeCompare(`${y.phase}${y.from}${y.to}`),
  );
  return {
    total,
    afterCall,
    approximateAfterCall,
    changed,
    unchanged: total - changed,
    baseline: before,
    candidate: after,
    transitions: sorted,
    missingInputs: {
      decisions: missingDecisions,
      paths: [...missingPaths]
        .map(([path, decisions]) => ({ path, decisions, readBy: reads.get(path) ?? [] }))
        .sort((x, y) => y.decisions - x.decisions || x.path.localeCompare(y.path)),
    },
  };
}

interface MutableTransition {
  phase: Phase;
  from: Verdict;
  to: Verdict;
  count: number;
  examples: ReplayExample[];
}

/** An outcome as a replay compares it, with whether some rule failed on the way. */
interface Judged {
  readonly outcome: Outcome;
  readonly failed: boolean;
}

const judged = (d: Decision): Judged => ({ outcome: d.intended, failed: d.errors.length > 0 });

const REFUSALS: ReadonlySet<Verdict> = new Set(['block', 'suspend_key', 'stop_job']);

function afterAnswer(policy: CompiledPolicy, record: ReplayRecord, pre: Judged): Judged {
  if (REFUSALS.has(pre.outcome.verdict)) return { outcome: DEFAULT_ALLOW, failed: false };
  return judged(evaluatePolicy(policy, record.input, { phase: 'post_call' }));
}

/**
 * Parts of the input a gateway gathers only when an active policy reads them (see ReplayRecord.read),
 * and the answer, which decisions recorded before answers were kept lack.
 */
type OnDemand = 'signals' | 'signals per subject' | 'budget' | 'request.headers' | 'response';

/** `signals.job…`, `signals.session…`, `signals.key…`: gathered only when a policy reads one of them. */
const SCOPED_SIGNAL = /^signals\.(job|session|key)(\.|$)/;

function sectionOf(path: string): OnDemand | undefined {
  if (isPostCallPath(path)) return 'response';
  if (SCOPED_SIGNAL.test(path)) return 'signals per subject';
  if (path.startsWith('signals.')) return 'signals';
  if (path.startsWith('budget.')) return 'budget';
  if (path.startsWith('request.headers')) return 'request.headers';
  return undefined;
}

type Reader = 'baseline' | 'candidate';

/** The reads of on-demand sections, by section: each path with the versions that read it. */
function onDemandReads(reads: ReadonlyMap<string, Reader[]>): Map<OnDemand, Map<string, Reader[]>> {
  const out = new Map<OnDemand, Map<string, Reader[]>>();
  for (const [path, readers] of reads) {
    const section = sectionOf(path);
    if (section === undefined) continue;
    const paths = out.get(section) ?? new Map<string, Reader[]>();
    paths.set(path, readers);
    out.set(section, paths);
  }
  return out;
}

/** Every path either version reads, with the versions that read it. */
function allReads(baseline: CompiledPolicy, candidate: CompiledPolicy): Map<string, Reader[]> {
  const out = new Map<string, Reader[]>();
  const sides: ReadonlyArray<[Reader, CompiledPolicy]> = [
    ['baseline', baseline],
    ['candidate', candidate],
  ];
  for (const [reader, policy] of sides)
    for (const rule of policy.rules)
      for (const path of rule.condition.reads) {
        const readers = out.get(path) ?? [];
        if (!readers.includes(reader)) readers.push(reader);
        out.set(path, readers);
      }
  return out;
}

/** `request.headers["x"]` and `request.headers.x` are within `request.headers`. */
function within(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
}

function wasGathered(record: ReplayRecord, section: OnDemand): boolean {
  // A request refused or failed before any answer has no answer to miss.
  if (section === 'response') return record.input.response !== undefined || record.answered !== undefined;
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
  afterCall: Record<Verdict, number>;
  withAction: Record<'alert' | 'redact' | 'cap_max_tokens', number>;
  withErrors: number;
}

const noVerdicts = (): Record<Verdict, number> =>
  Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;

function newSide(policy: CompiledPolicy): MutableSide {
  return {
    policy: policy.name,
    version: policy.version,
    verdicts: noVerdicts(),
    afterCall: noVerdicts(),
    withAction: { alert: 0, redact: 0, cap_max_tokens: 0 },
    withErrors: 0,
  };
}

function tally(side: MutableSide, phase: Phase, { outcome, failed }: Judged): void {
  (phase === 'post_call' ? side.afterCall : side.verdicts)[outcome.verdict]++;
  if (failed) side.withErrors++;
  const seen = new Set(outcome.actions.map((a) => a.action.type));
  for (const type of ['alert', 'redact', 'cap_max_tokens'] as const)
    if (seen.has(type)) side.withAction[type]++;
}

function signature(outcome: Outcome): string {
  return `${outcome.verdict}|${canonicalJson(outcome.actions.map((a) => a.action))}`;
}

/** Actions that change the request sent (and so the answer got): which model, which text, how long. */
const RESHAPING: ReadonlySet<string> = new Set(['reroute', 'redact', 'cap_max_tokens']);

function reshaping(outcome: Outcome): string {
  return canonicalJson(outcome.actions.map((a) => a.action).filter((a) => RESHAPING.has(a.type)));
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
  const late = report.afterCall > 0 ? ` (${report.afterCall} of them after the answer)` : '';
  const lines = [
    `replayed ${report.total} decisions${late}: ${report.changed} would change, ${report.unchanged} unchanged`,
    `  baseline  ${report.baseline.policy}@${report.baseline.version.slice(0, 12)}: ${counts(report.baseline)}`,
    `  candidate ${report.candidate.policy}@${report.candidate.version.slice(0, 12)}: ${counts(report.candidate)}`,
  ];
  const gaps = report.missingInputs;
  if (gaps.decisions > 0) {
    const paths = gaps.paths.map((p) => `${p.path} ${p.decisions}`).join(', ');
    const readers = new Set(gaps.paths.flatMap((p) => p.readBy));
    const who =
      readers.size > 1
        ? 'the baseline and the candidate'
        : readers.has('baseline')
          ? 'the baseline'
          : 'the candidate';
    lines.push(
      `  incomplete: ${gaps.decisions} of ${report.total - report.afterCall} decisions were recorded without inputs ${who} ${readers.size > 1 ? 'read' : 'reads'} (${paths}); ${who} saw them as missing (signals 0, no budget, no headers, no answer to evaluate after the call), so these counts may miss changes`,
    );
  }
  if (report.approximateAfterCall > 0)
    lines.push(
      `  estimated: ${report.approximateAfterCall} of ${report.afterCall} decisions after the answer used the recorded answer, though the candidate would have rerouted, redacted or capped that request otherwise; the answer it would have got is unknown`,
    );
  for (const t of report.transitions) {
    lines.push(`  ${t.phase === 'post_call' ? 'after the answer: ' : ''}${t.from} -> ${t.to}: ${t.count}`);
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
  const list = (verdicts: Readonly<Record<Verdict, number>>): string =>
    VERDICTS.filter((v) => verdicts[v] > 0)
      .map((v) => `${v} ${verdicts[v]}`)
      .join(', ');
  const late = list(side.afterCall);
  return late === '' ? list(side.verdicts) : `${list(side.verdicts)}; after the answer: ${late}`;
}

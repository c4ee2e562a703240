import type { AttemptEnd } from './outcome.js';

/** A policy decision about the job: one that intervened, or in shadow or canary would have. */
export interface PolicyFinding {
  decisionId: string;
  policy: string;
  /** The policy version (content hash). */
  version: string;
  /** enforce, shadow or canary. */
  mode: string;
  rule: string | null;
  /** The main action: stop_job, suspend_key, block, throttle, reroute, redact, cap_max_tokens or alert. */
  action: string;
  /** false: recorded only (shadow, or the canary's shadowed share). */
  enforced: boolean;
  reason: string;
  /** Signal values the decision saw. */
  signals?: Readonly<Record<string, number>>;
  /** The deciding rule's comparisons with literal numbers, e.g. signals.repeated_prompts >= 3. */
  thresholds?: ReadonlyArray<{ path: string; operator: string; value: number }>;
  /**
   * The job's signals as the supervisor saw them just after the decision, shown when the decision's own
   * values are not available (a platform that cannot list interventions or decisions).
   */
  observed?: Readonly<Record<string, number>>;
  /** Details of the action worth showing, e.g. "delay 250 ms". */
  detail?: string;
  channel?: string;
  /** Decided by the job's own policy (`flowloom run --policy`), not the platform's active ones. */
  jobPolicy?: boolean;
}

export type LocalWatch = 'memory' | 'cpu' | 'repeated_output' | 'silence';

export type TimelineEvent =
  | { kind: 'key'; action: 'created' | 'revoked' | 'suspended'; hint: string; detail?: string }
  | { kind: 'start'; attempt: number; pid: number; command: string }
  | { kind: 'decision'; finding: PolicyFinding }
  | {
      kind: 'watch';
      watch: LocalWatch;
      action: 'alert' | 'stop';
      reason: string;
      values: Readonly<Record<string, string | number>>;
    }
  | { kind: 'signal'; signal: string; pid: number; why: string }
  | { kind: 'exit'; attempt: number; end: AttemptEnd; durationMs: number; afterSignalMs?: number }
  | { kind: 'cleared'; why: string }
  | { kind: 'restart'; attempt: number; delayMs: number; why: string }
  | { kind: 'note'; text: string }
  | { kind: 'end'; exitCode: number; why: string };

export interface TimelineEntry {
  /** Milliseconds since supervision began. */
  at: number;
  event: TimelineEvent;
}

export interface TimelineHeader {
  job: string;
  command: string;
  durationMs: number;
}

const LABEL_WIDTH = 9;
const INDENT = ' '.repeat(2 + 9 + 2 + LABEL_WIDTH + 1);

export const shortVersion = (version: string): string => version.slice(0, 12);

export function formatOffset(ms: number): string {
  return `+${(Math.max(0, ms) / 1000).toFixed(2)}s`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** "exited with code 0", "killed by SIGKILL", … */
export function describeEnd(end: AttemptEnd): string {
  switch (end.kind) {
    case 'exited':
      return `exited with code ${end.code}`;
    case 'signaled':
      return `was killed by ${end.signal}`;
    case 'stopped':
      return 'was stopped';
    case 'spawn_failed':
      return `could not start: ${end.message}`;
  }
}

/** What a finding did (or would have done), as a verb phrase. */
export function findingVerb(f: PolicyFinding): string {
  const what = f.detail ? `${f.action} (${f.detail})` : f.action;
  return f.enforced ? what : `would ${what}`;
}

/** `policy "p" version 1a2b3c4d5e6f (shadow), rule "r"` */
export function findingSource(f: PolicyFinding): string {
  return `${f.jobPolicy ? 'job policy' : 'policy'} "${f.policy}" version ${shortVersion(f.version)} (${f.mode}), rule "${f.rule ?? '-'}"`;
}

/** The signals most telling about a runaway first. */
const SIGNAL_ORDER = [
  'requests_per_minute',
  'repeated_prompts',
  'spend_per_minute',
  'tokens_per_minute',
  'error_rate',
  'tool_call_depth',
  'baseline_ratio',
  'job_duration_s',
];

/**
 * The values a decision read: each threshold of the deciding rule next to the value it met, then the
 * other non-zero signals. `last` (a later finding of the same rule) shows how the values moved.
 */
export function formatValues(f: PolicyFinding, last?: PolicyFinding): string {
  const parts: string[] = [];
  const named = new Set<string>();
  for (const t of f.thresholds ?? []) {
    const name = t.path.replace(/^signals\./, '');
    named.add(name);
    const value = f.signals?.[name];
    const later = last?.signals?.[name];
    const shown =
      value === undefined ? '?' : later !== undefined && later !== value ? `${value}→${later}` : `${value}`;
    parts.push(`${name}=${shown} (rule: ${t.operator} ${t.value})`);
  }
  const rank = (name: string): number => {
    const at = SIGNAL_ORDER.indexOf(name);
    return at === -1 ? SIGNAL_ORDER.length : at;
  };
  const others = Object.entries(f.signals ?? {})
    .filter(([name, value]) => !named.has(name) && value !== 0)
    .sort(([a], [b]) => rank(a) - rank(b))
    .slice(0, 4)
    .map(([name, value]) => `${name}=${value}`);
  return [...parts, ...others].join(', ');
}

function label(event: TimelineEvent): string {
  switch (event.kind) {
    case 'decision': {
      const f = event.finding;
      if (!f.enforced) return 'flagged';
      return (
        { stop_job: 'stopped', suspend_key: 'suspended', throttle: 'throttled', cap_max_tokens: 'capped' }[
          f.action
        ] ?? f.action
      );
    }
    case 'watch':
      return event.action === 'stop' ? 'limit' : 'watch';
    case 'key':
      return 'key';
    default:
      return event.kind;
  }
}

function sameFinding(a: PolicyFinding, b: PolicyFinding): boolean {
  return (
    a.policy === b.policy &&
    a.version === b.version &&
    a.rule === b.rule &&
    a.action === b.action &&
    a.mode === b.mode &&
    a.enforced === b.enforced &&
    a.detail === b.detail
  );
}

function line(at: number, tag: string, text: string): string {
  return `  ${formatOffset(at).padStart(9)}  ${tag.padEnd(LABEL_WIDTH)} ${text}`;
}

function more(tag: string, text: string): string {
  return `${INDENT.slice(0, INDENT.length - LABEL_WIDTH - 1)}${tag.padEnd(LABEL_WIDTH)} ${text}`;
}

function eventLines(entry: TimelineEntry, group: TimelineEntry[]): string[] {
  const { at, event } = entry;
  const tag = label(event);
  switch (event.kind) {
    case 'key':
      return [
        line(
          at,
          tag,
          `${event.action === 'created' ? 'job key created' : event.action === 'revoked' ? 'job key revoked' : 'job key suspended'} (${event.hint})${event.detail ? `: ${event.detail}` : ''}`,
        ),
      ];
    case 'start':
      return [line(at, tag, `attempt ${event.attempt}: pid ${event.pid}  ${event.command}`)];
    case 'decision': {
      const f = event.finding;
      const last = group.at(-1)?.event;
      const lastFinding = last?.kind === 'decision' && group.length > 1 ? last.finding : undefined;
      const times = group.length > 1 ? ` ×${group.length} until ${formatOffset(group.at(-1)!.at)}` : '';
      const out = [line(at, tag, `${findingVerb(f)}: ${findingSource(f)}${times}`)];
      out.push(more('why', f.reason));
      const values = formatValues(f, lastFinding);
      if (values) out.push(more('values', values));
      else if (f.observed && Object.keys(f.observed).length > 0)
        out.push(
          more(
            'seen',
            `${Object.entries(f.observed)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ')} (the job's signals just after, as flowloom run saw them)`,
          ),
        );
      if (f.channel) out.push(more('channel', f.channel));
      out.push(
        more(
          'decision',
          group.length > 1
            ? `${f.decisionId} (first) … ${lastFinding?.decisionId ?? ''} (last)`
            : f.decisionId,
        ),
      );
      return out;
    }
    case 'watch': {
      const values = Object.entries(event.values)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      const out = [line(at, tag, `${event.action === 'stop' ? 'stop' : 'alert'}: ${event.reason}`)];
      if (values) out.push(more('values', values));
      out.push(more('by', `flowloom run (local ${event.watch.replace('_', ' ')} watch)`));
      return out;
    }
    case 'signal':
      return [line(at, tag, `${event.signal} to pid ${event.pid} and its process group: ${event.why}`)];
    case 'exit': {
      const after =
        event.afterSignalMs !== undefined ? `, ${formatDuration(event.afterSignalMs)} after the signal` : '';
      return [
        line(
          at,
          tag,
          `attempt ${event.attempt} ${describeEnd(event.end)} after ${formatDuration(event.durationMs)}${after}`,
        ),
      ];
    }
    case 'cleared':
      return [line(at, tag, event.why)];
    case 'restart':
      return [line(at, tag, `attempt ${event.attempt} in ${formatDuration(event.delayMs)}: ${event.why}`)];
    case 'note':
      return [line(at, tag, event.text)];
    case 'end':
      return [line(at, tag, `exit code ${event.exitCode}: ${event.why}`)];
  }
}

/**
 * The story of a supervised job, in order: what ran, what each policy decided and why (policy,
 * version, mode, rule, the values it read), what FlowLoom did about it, and how it ended. Runs of the
 * same finding (a rule matching request after request) are folded into one entry with a count.
 */
export function formatTimeline(entries: readonly TimelineEntry[], header: TimelineHeader): string[] {
  const sorted = [...entries].sort((a, b) => a.at - b.at);
  const out = [`Timeline of job ${header.job} (${header.command}), ${formatDuration(header.durationMs)}:`];
  for (let i = 0; i < sorted.length; i++) {
    const entry = sorted[i]!;
    const group = [entry];
    if (entry.event.kind === 'decision') {
      const first = entry.event.finding;
      for (let next = sorted[i + 1]; next?.event.kind === 'decision'; next = sorted[i + 1]) {
        if (!sameFinding(first, next.event.finding)) break;
        group.push(next);
        i++;
      }
    }
    out.push(...eventLines(entry, group));
  }
  return out;
}

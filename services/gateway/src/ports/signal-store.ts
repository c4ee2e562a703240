import type { JobStop } from '../domain/jobs.js';
import type { WindowTotals } from '../domain/signals.js';

export interface SignalOutcome {
  costMicros: number;
  tokens: number;
  /** The upstream failed (error storms); refusals by the gateway itself do not count. */
  failed: boolean;
}

/**
 * Sliding-window counters of runaway signals per subject, and the stop state of jobs. Like the
 * LimitStore: in-process when embedded, Redis (one Lua script per call) when replicas share them.
 * Windows are fixed at construction (see SignalWindows).
 */
export interface SignalStore {
  /**
   * Counts a request in the windows of each of `subjects` (its job, session and key, most specific
   * first) at `now`, remembers its prompt fingerprint in each, and returns each window's totals in the
   * same order (this request included, its prompt not) with the job's stop record when `job` is given.
   * One call (one Redis round trip) for all of them.
   */
  observe(
    subjects: readonly string[],
    now: number,
    fingerprint: string | undefined,
    job: string | undefined,
  ): Promise<{ totals: WindowTotals[]; stop: JobStop | undefined }>;
  /** The totals without counting anything; undefined for a subject with no recent traffic. */
  peek(subject: string, now: number): Promise<WindowTotals | undefined>;
  /** The outcome of an observed request, once known, in each of its subjects' windows. */
  record(subjects: readonly string[], now: number, outcome: SignalOutcome): Promise<void>;
  stopJob(stop: JobStop): Promise<void>;
  /** Removes the stop record; returns the one removed. */
  clearJob(job: string): Promise<JobStop | undefined>;
  jobStop(job: string): Promise<JobStop | undefined>;
  close(): Promise<void>;
}

/**
 * The most specific subject of a request: what `signals.*` describes, and how its events and throttle
 * queues are grouped.
 */
export function signalSubject(tags: { job?: string; session?: string }, keyId: string): string {
  if (tags.job) return `job/${tags.job}`;
  if (tags.session) return `session/${tags.session}`;
  return `key/${keyId}`;
}

export type SignalScope = 'job' | 'session' | 'key';

/** Every subject a request belongs to, most specific first: its job, its session, its key. */
export function signalSubjects(
  tags: { job?: string; session?: string },
  keyId: string,
): Array<{ scope: SignalScope; subject: string }> {
  const out: Array<{ scope: SignalScope; subject: string }> = [];
  if (tags.job) out.push({ scope: 'job', subject: `job/${tags.job}` });
  if (tags.session) out.push({ scope: 'session', subject: `session/${tags.session}` });
  out.push({ scope: 'key', subject: `key/${keyId}` });
  return out;
}

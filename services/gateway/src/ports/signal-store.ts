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
   * Counts a request of `subject` at `now`, remembers its prompt fingerprint, and returns the window's
   * totals (this request included, its prompt not) with the job's stop record when `job` is given.
   */
  observe(
    subject: string,
    now: number,
    fingerprint: string | undefined,
    job: string | undefined,
  ): Promise<{ totals: WindowTotals; stop: JobStop | undefined }>;
  /** The totals without counting anything; undefined for a subject with no recent traffic. */
  peek(subject: string, now: number): Promise<WindowTotals | undefined>;
  /** The outcome of an observed request, once known. */
  record(subject: string, now: number, outcome: SignalOutcome): Promise<void>;
  stopJob(stop: JobStop): Promise<void>;
  /** Removes the stop record; returns the one removed. */
  clearJob(job: string): Promise<JobStop | undefined>;
  jobStop(job: string): Promise<JobStop | undefined>;
  close(): Promise<void>;
}

/** Signals are kept for the most specific tag a request carries. */
export function signalSubject(tags: { job?: string; session?: string }, keyId: string): string {
  if (tags.job) return `job/${tags.job}`;
  if (tags.session) return `session/${tags.session}`;
  return `key/${keyId}`;
}

import type { JobStop } from '../domain/jobs.js';
import type { WindowTotals } from '../domain/signals.js';
import type { SignalOutcome, SignalStore } from '../ports/signal-store.js';
import { FallbackStore, type SharedStoreFallbackOptions } from './shared-store-fallback.js';

/** A job id nobody uses: reading its stop record tells whether the shared store answers. */
const READINESS_JOB = 'readiness-probe';

/**
 * Runaway signals on the shared store, with its fallback (SharedStoreFallback, always `local`):
 * while Redis is unreachable, signals are this replica's own, so detection keeps working on the
 * traffic it sees. Job stops are also kept locally, and those made or cleared during an outage are
 * handed to the shared store when it is back, so no replica forgets a stop.
 */
export class FallbackSignalStore extends FallbackStore<SignalStore> implements SignalStore {
  /** Stops (or clears, as null) the shared store has not heard of yet, by job. */
  private readonly unsynced = new Map<string, JobStop | null>();

  constructor(
    shared: SignalStore,
    private readonly local: SignalStore,
    options: Pick<SharedStoreFallbackOptions<SignalStore>, 'onChange' | 'retryMs' | 'now'> = {},
  ) {
    super(
      shared,
      local,
      { ...options, what: 'signals', mode: 'local', onRecover: (store) => this.handOver(store) },
      (store) => store.jobStop(READINESS_JOB),
    );
  }

  private async handOver(shared: SignalStore): Promise<void> {
    for (const [job, stop] of [...this.unsynced]) {
      if (stop) await shared.stopJob(stop);
      else await shared.clearJob(job);
      this.unsynced.delete(job);
    }
  }

  observe(
    subjects: readonly string[],
    now: number,
    fingerprint: string | undefined,
    job: string | undefined,
  ): Promise<{ totals: WindowTotals[]; stop: JobStop | undefined }> {
    return this.fallback.use((s) => s.observe(subjects, now, fingerprint, job));
  }

  peek(subject: string, now: number): Promise<WindowTotals | undefined> {
    return this.fallback.use((s) => s.peek(subject, now));
  }

  record(subjects: readonly string[], now: number, outcome: SignalOutcome): Promise<void> {
    return this.fallback.use((s) => s.record(subjects, now, outcome));
  }

  async stopJob(stop: JobStop): Promise<void> {
    await this.local.stopJob(stop);
    await this.fallback.use((s) => s.stopJob(stop));
    this.remember(stop.job, stop);
  }

  async clearJob(job: string): Promise<JobStop | undefined> {
    const local = await this.local.clearJob(job);
    const cleared = await this.fallback.use((s) => s.clearJob(job));
    this.remember(job, null);
    return cleared ?? local;
  }

  /** After a write: the shared store has it, or must get it on recovery. */
  private remember(job: string, stop: JobStop | null): void {
    if (this.fallback.degraded) this.unsynced.set(job, stop);
    else this.unsynced.delete(job);
  }

  jobStop(job: string): Promise<JobStop | undefined> {
    return this.fallback.use((s) => s.jobStop(job));
  }
}

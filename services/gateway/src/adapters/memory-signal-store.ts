import type { JobStop } from '../domain/jobs.js';
import type { PromptMark, SignalWindows, WindowTotals } from '../domain/signals.js';
import type { SignalOutcome, SignalStore } from '../ports/signal-store.js';

/** One subject's ring of buckets: slot s holds bucket index `index[s]`, stale when outside the window. */
interface SubjectState {
  index: Float64Array;
  requests: Float64Array;
  finished: Float64Array;
  errors: Float64Array;
  cost: Float64Array;
  tokens: Float64Array;
  firstSeenAt: number;
  lastSeenAt: number;
  totalCost: number;
  prompts: PromptMark[];
}

const MAX_SUBJECTS = 100_000;
const MAX_STOPPED_JOBS = 100_000;

/** Embedded signal counters with the Redis store's semantics; single-threaded, so every call is atomic. */
export class MemorySignalStore implements SignalStore {
  private readonly subjects = new Map<string, SubjectState>();
  private readonly stops = new Map<string, JobStop>();
  private calls = 0;

  constructor(private readonly windows: SignalWindows) {}

  private state(subject: string, now: number, create: boolean): SubjectState | undefined {
    let s = this.subjects.get(subject);
    if (s && now - s.lastSeenAt > this.windows.idleMs) {
      this.subjects.delete(subject);
      s = undefined;
    }
    if (!s && create) {
      const n = this.windows.buckets;
      s = {
        index: new Float64Array(n).fill(-1),
        requests: new Float64Array(n),
        finished: new Float64Array(n),
        errors: new Float64Array(n),
        cost: new Float64Array(n),
        tokens: new Float64Array(n),
        firstSeenAt: now,
        lastSeenAt: now,
        totalCost: 0,
        prompts: [],
      };
      if (this.subjects.size >= MAX_SUBJECTS) this.sweep(now);
      this.subjects.set(subject, s);
    }
    if (++this.calls % 10_000 === 0) this.sweep(now);
    return s;
  }

  private slot(s: SubjectState, now: number): number {
    const bucket = Math.floor(now / this.windows.bucketMs);
    const slot = bucket % this.windows.buckets;
    if (s.index[slot] !== bucket) {
      s.index[slot] = bucket;
      s.requests[slot] = 0;
      s.finished[slot] = 0;
      s.errors[slot] = 0;
      s.cost[slot] = 0;
      s.tokens[slot] = 0;
    }
    return slot;
  }

  private totals(s: SubjectState, now: number): WindowTotals {
    const bucket = Math.floor(now / this.windows.bucketMs);
    const oldest = bucket - this.windows.buckets;
    let requests = 0;
    let finished = 0;
    let errors = 0;
    let cost = 0;
    let tokens = 0;
    for (let i = 0; i < this.windows.buckets; i++) {
      const index = s.index[i] ?? -1;
      if (index <= oldest || index > bucket) continue;
      requests += s.requests[i] ?? 0;
      finished += s.finished[i] ?? 0;
      errors += s.errors[i] ?? 0;
      cost += s.cost[i] ?? 0;
      tokens += s.tokens[i] ?? 0;
    }
    return {
      requests,
      finished,
      errors,
      costMicros: cost,
      tokens,
      firstSeenAt: s.firstSeenAt,
      totalCostMicros: s.totalCost,
      prompts: s.prompts.slice(),
    };
  }

  async observe(
    subjects: readonly string[],
    now: number,
    fingerprint: string | undefined,
    job: string | undefined,
  ): Promise<{ totals: WindowTotals[]; stop: JobStop | undefined }> {
    const totals = subjects.map((subject) => this.observeOne(subject, now, fingerprint));
    return { totals, stop: job === undefined ? undefined : this.stops.get(job) };
  }

  private observeOne(subject: string, now: number, fingerprint: string | undefined): WindowTotals {
    const s = this.state(subject, now, true)!;
    s.lastSeenAt = now;
    const slot = this.slot(s, now);
    s.requests[slot] = (s.requests[slot] ?? 0) + 1;
    const totals = this.totals(s, now);
    if (fingerprint !== undefined) {
      s.prompts.unshift({ at: now, fingerprint });
      if (s.prompts.length > this.windows.maxPrompts) s.prompts.length = this.windows.maxPrompts;
    }
    return totals;
  }

  async peek(subject: string, now: number): Promise<WindowTotals | undefined> {
    const s = this.state(subject, now, false);
    return s ? this.totals(s, now) : undefined;
  }

  async record(subjects: readonly string[], now: number, outcome: SignalOutcome): Promise<void> {
    for (const subject of subjects) {
      const s = this.state(subject, now, true)!;
      s.lastSeenAt = now;
      const slot = this.slot(s, now);
      s.finished[slot] = (s.finished[slot] ?? 0) + 1;
      if (outcome.failed) s.errors[slot] = (s.errors[slot] ?? 0) + 1;
      s.cost[slot] = (s.cost[slot] ?? 0) + Math.round(outcome.costMicros);
      s.tokens[slot] = (s.tokens[slot] ?? 0) + Math.round(outcome.tokens);
      s.totalCost += Math.round(outcome.costMicros);
    }
  }

  async stopJob(stop: JobStop): Promise<void> {
    if (this.stops.size >= MAX_STOPPED_JOBS && !this.stops.has(stop.job)) {
      const oldest = this.stops.keys().next().value;
      if (oldest !== undefined) this.stops.delete(oldest);
    }
    this.stops.set(stop.job, stop);
  }

  async clearJob(job: string): Promise<JobStop | undefined> {
    const stop = this.stops.get(job);
    this.stops.delete(job);
    return stop;
  }

  async jobStop(job: string): Promise<JobStop | undefined> {
    return this.stops.get(job);
  }

  private sweep(now: number): void {
    for (const [subject, s] of this.subjects)
      if (now - s.lastSeenAt > this.windows.idleMs) this.subjects.delete(subject);
    // Still full of live subjects: forget the least recently created ones rather than grow without bound.
    for (const subject of this.subjects.keys()) {
      if (this.subjects.size < MAX_SUBJECTS) break;
      this.subjects.delete(subject);
    }
  }

  async close(): Promise<void> {
    this.subjects.clear();
  }
}

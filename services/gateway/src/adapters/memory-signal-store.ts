import type { JobStop } from '../domain/jobs.js';
import type { PromptMark, SignalWindows, WindowTotals } from '../domain/signals.js';
import type { SignalOutcome, SignalStore } from '../ports/signal-store.js';

/**
 * One subject's ring of buckets, every counter in one array: row `r` slot `s` is `cells[r * buckets + s]`;
 * slot s holds bucket `cells[s]` (row INDEX), stale when outside the window. One plain array rather
 * than a typed array per counter: with up to MAX_SUBJECTS subjects (a session per conversation) the
 * six typed arrays and their off-heap buffers cost about 3.6 kB of RSS per subject, this about 1.4 kB.
 */
interface SubjectState {
  cells: number[];
  firstSeenAt: number;
  lastSeenAt: number;
  totalCost: number;
  prompts: PromptMark[];
}

const MAX_SUBJECTS = 100_000;
const INDEX = 0;
const REQUESTS = 1;
const FINISHED = 2;
const ERRORS = 3;
const COST = 4;
const TOKENS = 5;
const ROWS = 6;
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
      const cells = new Array<number>(ROWS * n).fill(0);
      cells.fill(-1, INDEX * n, INDEX * n + n);
      s = {
        cells,
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

  /** Adds `amount` to `row` in the current bucket of `s`, first clearing that bucket when it is stale. */
  private add(s: SubjectState, now: number, row: number, amount: number): void {
    const n = this.windows.buckets;
    const bucket = Math.floor(now / this.windows.bucketMs);
    const slot = bucket % n;
    if (s.cells[INDEX * n + slot] !== bucket) {
      for (let r = 0; r < ROWS; r++) s.cells[r * n + slot] = 0;
      s.cells[INDEX * n + slot] = bucket;
    }
    const at = row * n + slot;
    s.cells[at] = (s.cells[at] ?? 0) + amount;
  }

  private totals(s: SubjectState, now: number): WindowTotals {
    const bucket = Math.floor(now / this.windows.bucketMs);
    const oldest = bucket - this.windows.buckets;
    let requests = 0;
    let finished = 0;
    let errors = 0;
    let cost = 0;
    let tokens = 0;
    const n = this.windows.buckets;
    const c = s.cells;
    for (let i = 0; i < n; i++) {
      const index = c[INDEX * n + i] ?? -1;
      if (index <= oldest || index > bucket) continue;
      requests += c[REQUESTS * n + i] ?? 0;
      finished += c[FINISHED * n + i] ?? 0;
      errors += c[ERRORS * n + i] ?? 0;
      cost += c[COST * n + i] ?? 0;
      tokens += c[TOKENS * n + i] ?? 0;
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
    this.add(s, now, REQUESTS, 1);
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
      this.add(s, now, FINISHED, 1);
      if (outcome.failed) this.add(s, now, ERRORS, 1);
      this.add(s, now, COST, Math.round(outcome.costMicros));
      this.add(s, now, TOKENS, Math.round(outcome.tokens));
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

/**
 * Aggregation of refused authentication attempts, so a client hammering with a bad key cannot flood
 * the audit trail, while the trail still tells how many attempts failed. Pure: the caller supplies
 * the time and turns verdicts and summaries into events.
 *
 * Attempts are grouped by who presented what from where: the presented key's fingerprint (a hash,
 * never the secret) and the source address. The first attempt of a group is recorded at once and
 * opens a window; the group's further attempts in that window are only counted, and when the window
 * closes they become one summary with the count. A source that tries many different keys (one per
 * attempt, say) is folded into one group for that source after `maxKeysPerSource` of them, and when
 * `maxWindows` groups are open, new ones share one last group: memory stays bounded and nothing is
 * dropped.
 */

export interface FailedAttempt<T> {
  /** The presented key's fingerprint ('' when none was presented). */
  readonly fingerprint: string;
  /** The source address ('' when unknown). */
  readonly source: string;
  /** When it happened (ms since the epoch). */
  readonly at: number;
  /** What the caller records about it; a summary carries its last counted attempt's. */
  readonly detail: T;
}

/** How far a group reaches: one key from one address, every key from one address, or everything. */
export type FailureScope = 'key' | 'source' | 'all';

export interface FailureSummary<T> {
  readonly scope: FailureScope;
  /** The last counted attempt's detail. */
  readonly detail: T;
  /** Attempts counted in the window after the one recorded at once (≥ 1). */
  readonly count: number;
  readonly firstAt: number;
  readonly lastAt: number;
  /** How many different key fingerprints the counted attempts presented. */
  readonly distinctKeys: number;
}

export interface FailureVerdict<T> {
  /** Record this attempt now (the first of its window); otherwise it was counted. */
  readonly record: boolean;
  readonly scope: FailureScope;
  /** Windows that had closed by this attempt's time, to record now (before this attempt). */
  readonly closed: readonly FailureSummary<T>[];
}

interface Window<T> {
  readonly scope: FailureScope;
  readonly source: string;
  readonly openedAt: number;
  count: number;
  firstAt: number;
  lastAt: number;
  detail: T | undefined;
  /** Fingerprints of the counted attempts (bounded: past the cap only the count grows). */
  readonly fingerprints: Set<string>;
}

const MAX_TRACKED_FINGERPRINTS = 1_000;

export class AuthFailureWindows<T> {
  private readonly windows = new Map<string, Window<T>>();
  /** Open key-scoped windows per source address. */
  private readonly keyWindowsPerSource = new Map<string, number>();

  constructor(
    readonly windowMs: number,
    private readonly maxKeysPerSource = 20,
    private readonly maxWindows = 10_000,
  ) {
    if (!(windowMs > 0)) throw new Error(`the failure window must be positive (got ${windowMs} ms)`);
  }

  observe(attempt: FailedAttempt<T>): FailureVerdict<T> {
    const closed = this.closeDue(attempt.at);
    const keyGroup = `key\u0000${attempt.source}\u0000${attempt.fingerprint}`;
    const sourceGroup = `source\u0000${attempt.source}`;
    let group = keyGroup;
    let scope: FailureScope = 'key';
    if (!this.windows.has(keyGroup)) {
      const keysHere = this.keyWindowsPerSource.get(attempt.source) ?? 0;
      const room = this.windows.size < this.maxWindows;
      if (!room || keysHere >= this.maxKeysPerSource) {
        group = room || this.windows.has(sourceGroup) ? sourceGroup : 'all';
        scope = group === 'all' ? 'all' : 'source';
      }
    }
    const open = this.windows.get(group);
    if (open) {
      open.count++;
      if (open.count === 1) open.firstAt = attempt.at;
      open.lastAt = attempt.at;
      open.detail = attempt.detail;
      if (open.fingerprints.size < MAX_TRACKED_FINGERPRINTS) open.fingerprints.add(attempt.fingerprint);
      return { record: false, scope: open.scope, closed };
    }
    this.windows.set(group, {
      scope,
      source: attempt.source,
      openedAt: attempt.at,
      count: 0,
      firstAt: attempt.at,
      lastAt: attempt.at,
      detail: undefined,
      fingerprints: new Set(),
    });
    if (scope === 'key') {
      this.keyWindowsPerSource.set(attempt.source, (this.keyWindowsPerSource.get(attempt.source) ?? 0) + 1);
    }
    return { record: true, scope, closed };
  }

  /** Closes the windows that ended by `now`; those that counted attempts become summaries. */
  closeDue(now: number): FailureSummary<T>[] {
    const summaries: FailureSummary<T>[] = [];
    for (const [group, window] of this.windows) {
      if (now - window.openedAt < this.windowMs) continue;
      this.close(group, window, summaries);
    }
    return summaries;
  }

  /** Closes every window (shutdown): nothing counted is left unreported. */
  closeAll(): FailureSummary<T>[] {
    const summaries: FailureSummary<T>[] = [];
    for (const [group, window] of this.windows) this.close(group, window, summaries);
    return summaries;
  }

  /** Windows open now. */
  get openCount(): number {
    return this.windows.size;
  }

  private close(group: string, window: Window<T>, into: FailureSummary<T>[]): void {
    this.windows.delete(group);
    if (window.scope === 'key') {
      const left = (this.keyWindowsPerSource.get(window.source) ?? 1) - 1;
      if (left > 0) this.keyWindowsPerSource.set(window.source, left);
      else this.keyWindowsPerSource.delete(window.source);
    }
    if (window.count === 0 || window.detail === undefined) return;
    into.push({
      scope: window.scope,
      detail: window.detail,
      count: window.count,
      firstAt: window.firstAt,
      lastAt: window.lastAt,
      distinctKeys: window.fingerprints.size,
    });
  }
}

import type { AlertNotice, AlertPost } from './alerts.js';

/**
 * Deduplication of alerts: per channel, rule and subject, the first `perWindow` matches of a window
 * are posted at once; later ones are only counted, and when the window closes one summary stands
 * for all of them ("×N in the last minute"). A runaway job that matches 1,000 times a minute thus
 * makes `perWindow` + 1 posts a minute, not 1,000. Pure: time comes in as arguments.
 */
export interface AlertRateLimitOptions {
  readonly windowMs: number;
  readonly perWindow: number;
  /** Windows tracked at once; beyond it, new subjects share one window per channel and rule. */
  readonly maxTracked?: number;
}

interface Window {
  readonly startedAt: number;
  posted: number;
  /** Matches in the window, posted or not. */
  matches: number;
  held: number;
  latest: AlertNotice;
}

const DEFAULT_MAX_TRACKED = 10_000;

export class AlertRateLimit {
  private readonly windows = new Map<string, Window>();
  private readonly maxTracked: number;

  constructor(private readonly options: AlertRateLimitOptions) {
    this.maxTracked = options.maxTracked ?? DEFAULT_MAX_TRACKED;
  }

  /** A match for `channel`: what to post now (a closed window's summary first, then this one, when there is one). */
  offer(channel: string, notice: AlertNotice, now: number): AlertPost[] {
    let key = `${channel}\u0000${notice.policy}\u0000${notice.rule}\u0000${notice.subject}`;
    if (!this.windows.has(key) && this.windows.size >= this.maxTracked)
      key = `${channel}\u0000${notice.policy}\u0000${notice.rule}\u0000*`;
    const out: AlertPost[] = [];
    let w = this.windows.get(key);
    if (w && now >= w.startedAt + this.options.windowMs) {
      const closed = this.close(w);
      if (closed) out.push(closed);
      this.windows.delete(key);
      w = undefined;
    }
    if (!w) {
      w = { startedAt: now, posted: 0, matches: 0, held: 0, latest: notice };
      this.windows.set(key, w);
    }
    w.matches++;
    if (w.posted < this.options.perWindow) {
      w.posted++;
      out.push(this.single(notice, now));
    } else {
      w.held++;
      w.latest = notice;
    }
    return out;
  }

  /** Summaries of the windows closed by `now`; their entries are forgotten. */
  due(now: number): AlertPost[] {
    const out: AlertPost[] = [];
    for (const [key, w] of this.windows) {
      if (now < w.startedAt + this.options.windowMs) continue;
      const closed = this.close(w);
      if (closed) out.push(closed);
      this.windows.delete(key);
    }
    return out;
  }

  /** When the earliest window closes (to schedule `due`), or undefined when none is open. */
  nextDueAt(): number | undefined {
    let next: number | undefined;
    for (const w of this.windows.values()) {
      const at = w.startedAt + this.options.windowMs;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /** Every open window's summary now (at shutdown), whether or not it has closed. */
  drain(now: number): AlertPost[] {
    const out: AlertPost[] = [];
    for (const w of this.windows.values()) {
      const closed = this.close(w, now);
      if (closed) out.push(closed);
    }
    this.windows.clear();
    return out;
  }

  get tracked(): number {
    return this.windows.size;
  }

  private single(notice: AlertNotice, now: number): AlertPost {
    return { notice, count: 1, summary: false, firstAt: now, lastAt: now, windowMs: this.options.windowMs };
  }

  /** The summary of a window with matches that were held back; nothing when every match was posted. */
  private close(w: Window, now?: number): AlertPost | undefined {
    if (w.held === 0) return undefined;
    return {
      notice: w.latest,
      count: w.matches,
      summary: true,
      firstAt: w.startedAt,
      lastAt: w.latest.at,
      windowMs: now === undefined ? this.options.windowMs : Math.max(1, now - w.startedAt),
    };
  }
}

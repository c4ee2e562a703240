export interface Reservation {
  key: string;
  amount: number;
  limit: number;
  ttlSeconds: number;
}

export type ReserveResult = { ok: true } | { ok: false; key: string; current: number; limit: number };

export interface TakeResult {
  allowed: boolean;
  /** Units counted in the sliding window, including this take when allowed. */
  used: number;
  /** When denied: how long until `amount` would fit. */
  retryAfterMs: number;
}

/**
 * Counters for budgets and rate limits. Implementations are atomic: `reserve` checks every bucket and
 * adds to all of them, or to none, in one step, so concurrent requests (on any number of gateway
 * replicas sharing the store) can never jointly pass a limit.
 */
export interface LimitStore {
  reserve(reservations: readonly Reservation[]): Promise<ReserveResult>;
  /** Corrects counters once the real amount is known (negative deltas refund). */
  adjust(entries: ReadonlyArray<{ key: string; delta: number; ttlSeconds: number }>): Promise<void>;
  /** Sliding-window (one minute by default) rate limiting: counts `amount` if it fits under `limit`. */
  take(key: string, amount: number, limit: number, windowMs: number, now: number): Promise<TakeResult>;
  /** Adds to a sliding window without checking (tokens known only after the answer). */
  record(key: string, amount: number, windowMs: number, now: number): Promise<void>;
  get(key: string): Promise<number>;
  close(): Promise<void>;
}

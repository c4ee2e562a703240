import type { LimitStore, Reservation, ReserveResult, TakeResult } from '../ports/limit-store.js';
import { type FallbackMode, FallbackStore } from './shared-store-fallback.js';

export type LimitsFallback = FallbackMode;

/** A counter nobody uses: reading it tells whether the shared store answers. */
const READINESS_KEY = 'readiness-probe';

/**
 * Budgets and rate limits on the shared store, with its fallback (SharedStoreFallback): `local`
 * switches to this replica's own counters (limits then hold per replica, not jointly) and `closed`
 * refuses requests.
 */
export class FallbackLimitStore extends FallbackStore<LimitStore> implements LimitStore {
  constructor(
    shared: LimitStore,
    local: LimitStore,
    mode: LimitsFallback,
    onChange: (degraded: boolean, reason: string) => void = () => {},
    retryMs = 5_000,
    now: () => number = Date.now,
  ) {
    super(
      shared,
      local,
      {
        what: 'limits',
        mode,
        closedMessage:
          'Budgets and rate limits cannot be checked right now (limits store unreachable). Retry shortly.',
        onChange,
        retryMs,
        now,
      },
      (store) => store.get(READINESS_KEY),
    );
  }

  reserve(reservations: readonly Reservation[]): Promise<ReserveResult> {
    return this.fallback.use((s) => s.reserve(reservations));
  }

  adjust(entries: ReadonlyArray<{ key: string; delta: number; ttlSeconds: number }>): Promise<void> {
    return this.fallback.use((s) => s.adjust(entries));
  }

  take(key: string, amount: number, limit: number, windowMs: number, now: number): Promise<TakeResult> {
    return this.fallback.use((s) => s.take(key, amount, limit, windowMs, now));
  }

  record(key: string, amount: number, windowMs: number, now: number): Promise<void> {
    return this.fallback.use((s) => s.record(key, amount, windowMs, now));
  }

  get(key: string): Promise<number> {
    return this.fallback.use((s) => s.get(key));
  }
}

import { AppError } from '@flowloom/errors';
import type { LimitStore, Reservation, ReserveResult, TakeResult } from '../ports/limit-store.js';

export type LimitsFallback = 'local' | 'closed';

/**
 * Shared counters with a way to keep serving when they are unreachable: `local` switches to this
 * replica's own counters (limits then hold per replica, not jointly) and `closed` refuses requests.
 * It tries the shared store again after `retryMs`, and reports its state for /readyz and metrics.
 */
export class FallbackLimitStore implements LimitStore {
  private failedAt: number | undefined;
  private lastError = '';

  constructor(
    private readonly shared: LimitStore,
    private readonly local: LimitStore,
    private readonly mode: LimitsFallback,
    private readonly onChange: (degraded: boolean, reason: string) => void = () => {},
    private readonly retryMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** `ok`, or why limits are degraded. */
  status(): string {
    return this.failedAt === undefined
      ? 'ok'
      : `degraded: ${this.lastError}; ${this.mode === 'local' ? 'using local limits' : 'refusing requests'}`;
  }

  get degraded(): boolean {
    return this.failedAt !== undefined;
  }

  private async use<T>(op: (store: LimitStore) => Promise<T>): Promise<T> {
    if (this.failedAt === undefined || this.now() - this.failedAt >= this.retryMs) {
      try {
        const result = await op(this.shared);
        if (this.failedAt !== undefined) {
          this.failedAt = undefined;
          this.onChange(false, 'shared limits store is back');
        }
        return result;
      } catch (error) {
        const first = this.failedAt === undefined;
        this.failedAt = this.now();
        this.lastError = (error as Error).message;
        if (first) this.onChange(true, this.lastError);
      }
    }
    if (this.mode === 'closed') {
      throw new AppError(
        'unavailable',
        'Budgets and rate limits cannot be checked right now (limits store unreachable). Retry shortly.',
        {
          retryAfterSeconds: Math.ceil(this.retryMs / 1000),
        },
      );
    }
    return op(this.local);
  }

  reserve(reservations: readonly Reservation[]): Promise<ReserveResult> {
    return this.use((s) => s.reserve(reservations));
  }

  adjust(entries: ReadonlyArray<{ key: string; delta: number; ttlSeconds: number }>): Promise<void> {
    return this.use((s) => s.adjust(entries));
  }

  take(key: string, amount: number, limit: number, windowMs: number, now: number): Promise<TakeResult> {
    return this.use((s) => s.take(key, amount, limit, windowMs, now));
  }

  record(key: string, amount: number, windowMs: number, now: number): Promise<void> {
    return this.use((s) => s.record(key, amount, windowMs, now));
  }

  get(key: string): Promise<number> {
    return this.use((s) => s.get(key));
  }

  async close(): Promise<void> {
    await Promise.all([this.shared.close(), this.local.close()]);
  }
}

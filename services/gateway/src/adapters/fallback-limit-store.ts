import { randomUUID } from 'node:crypto';
import type { LimitStore, Reservation, ReserveResult, TakeResult } from '../ports/limit-store.js';
import type { CounterSnapshot } from './memory-limit-store.js';
import { type FallbackMode, FallbackStore } from './shared-store-fallback.js';

export type LimitsFallback = FallbackMode;

/** The shared store: takes a batch of counters once (see RedisLimitStore.handOver). */
export type SharedLimitStore = LimitStore & {
  handOver(id: string, counters: readonly CounterSnapshot[]): Promise<boolean>;
};
/** The local store: gives up what it counted (see MemoryLimitStore.drain). */
export type LocalLimitStore = LimitStore & { drain(): CounterSnapshot[] };

/** What one hand-over added to the shared store, for metrics and logs. */
export interface LimitsHandOver {
  /** False when the shared store already had this batch (a retry after a lost reply). */
  added: boolean;
  /** Counter key → amount added (spend in micro-USD, tokens, requests, by the key's kind). */
  amounts: Record<string, number>;
}

export interface FallbackLimitStoreOptions {
  onChange?: (degraded: boolean, reason: string) => void;
  onHandOver?: (handOver: LimitsHandOver) => void;
  retryMs?: number;
  now?: () => number;
}

/** A counter nobody uses: reading it tells whether the shared store answers. */
const READINESS_KEY = 'readiness-probe';

/**
 * Budgets and rate limits on the shared store, with its fallback (SharedStoreFallback): `local`
 * switches to this replica's own counters (limits then hold per replica, not jointly) and `closed`
 * refuses requests. When the shared store answers again, what was counted locally meanwhile is added
 * to it (once, atomically) before it serves, so a budget remembers what was spent during the outage.
 * Reservations made locally move with their counters, so settling them later on the shared store is
 * right; windows that are over are not carried.
 */
export class FallbackLimitStore extends FallbackStore<LimitStore> implements LimitStore {
  /** Names this process's batches: the shared store applies each id once. */
  private readonly replica = randomUUID();
  private batches = 0;
  /** A drained batch not yet confirmed by the shared store: retried with the same id. */
  private pending: { id: string; counters: CounterSnapshot[] } | undefined;
  private handing: Promise<void> | undefined;

  constructor(
    shared: SharedLimitStore,
    private readonly local: LocalLimitStore,
    mode: LimitsFallback,
    private readonly options: FallbackLimitStoreOptions = {},
  ) {
    super(
      shared,
      local,
      {
        what: 'limits',
        mode,
        closedMessage:
          'Budgets and rate limits cannot be checked right now (limits store unreachable). Retry shortly.',
        onChange: options.onChange,
        onRecover: () => this.handOver(shared),
        retryMs: options.retryMs,
        now: options.now,
      },
      (store) => store.get(READINESS_KEY),
    );
  }

  /** One hand-over at a time: requests that find the store back meanwhile wait for it. */
  private handOver(shared: SharedLimitStore): Promise<void> {
    this.handing ??= this.handOverAll(shared).finally(() => {
      this.handing = undefined;
    });
    return this.handing;
  }

  private async handOverAll(shared: SharedLimitStore): Promise<void> {
    for (;;) {
      if (!this.pending) {
        // Drain only once the shared store answers: a recovery attempt during the outage must leave
        // the local counters whole, since they still enforce the limits meanwhile.
        await shared.get(READINESS_KEY);
        const counters = this.local.drain();
        if (counters.length === 0) return;
        this.pending = { id: `${this.replica}:${++this.batches}`, counters };
      }
      // A failure keeps the batch pending (and the fallback in use): the retry sends the same id.
      const added = await shared.handOver(this.pending.id, this.pending.counters);
      const amounts = Object.fromEntries(this.pending.counters.map((c) => [c.key, c.value]));
      this.pending = undefined;
      this.options.onHandOver?.({ added, amounts });
    }
  }

  /** While handing over, says so without waiting for it; otherwise the probed status. */
  override check(): Promise<string> {
    if (this.handing)
      return Promise.resolve(
        'degraded: handing over the budgets and rate limits counted locally during the outage to the shared store',
      );
    return super
      .check()
      .then((status) =>
        this.pending ? `${status}; ${this.pending.counters.length} counters wait to be handed over` : status,
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

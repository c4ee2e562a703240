import type { LimitStore, Reservation, ReserveResult, TakeResult } from '../ports/limit-store.js';
import type { JournaledCounter } from '../ports/limits-journal.js';

interface Counter {
  value: number;
  expiresAt: number;
}

/** A live counter as handed to another store: its value and how long it has left (0: no expiry). */
export interface CounterSnapshot {
  key: string;
  value: number;
  ttlMs: number;
}

/**
 * Embedded counters: the same semantics as the Redis store, in this process. Being single-threaded,
 * each method body is already atomic.
 */
export class MemoryLimitStore implements LimitStore {
  private readonly counters = new Map<string, Counter>();
  /** What was added to each counter since `takeChanges()` last ran; only once `trackChanges()` was called. */
  private changes: Map<string, JournaledCounter> | undefined;
  private sweeps = 0;

  constructor(private readonly now: () => number = Date.now) {}

  private read(key: string): number {
    const c = this.counters.get(key);
    if (!c) return 0;
    if (c.expiresAt !== 0 && c.expiresAt <= this.now()) {
      this.counters.delete(key);
      return 0;
    }
    return c.value;
  }

  private add(key: string, delta: number, ttlMs: number): number {
    const value = this.read(key) + delta;
    const expiresAt = ttlMs > 0 ? this.now() + ttlMs : 0;
    this.counters.set(key, { value, expiresAt });
    if (this.changes) {
      const change = this.changes.get(key);
      if (change) {
        change.value += delta;
        change.expiresAt = expiresAt;
      } else this.changes.set(key, { key, value: delta, expiresAt });
    }
    if (++this.sweeps % 10_000 === 0) this.sweep();
    return value;
  }

  /** From now on, remembers what each operation adds, for `takeChanges()` (a fallback store's journal). */
  trackChanges(): void {
    this.changes ??= new Map();
  }

  /** What was added to each counter since the last call (zero sums left out), then forgets it. */
  takeChanges(): JournaledCounter[] {
    if (!this.changes) return [];
    const taken = [...this.changes.values()].filter((c) => c.value !== 0);
    this.changes.clear();
    return taken;
  }

  /**
   * Adds counts made elsewhere (journaled by other replicas, or by this one before a restart) to the
   * counters without recording them as changes: they enforce limits here but are never journaled,
   * so never handed over, from here. A counter keeps the later of its own expiry and the seeded one.
   */
  seed(counters: readonly JournaledCounter[]): void {
    for (const c of counters) {
      this.read(c.key); // forgets it if expired
      const own = this.counters.get(c.key);
      const expiresAt =
        own && (own.expiresAt === 0 || c.expiresAt === 0) ? 0 : Math.max(own?.expiresAt ?? 0, c.expiresAt);
      this.counters.set(c.key, { value: (own?.value ?? 0) + c.value, expiresAt });
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, c] of this.counters)
      if (c.expiresAt !== 0 && c.expiresAt <= now) this.counters.delete(key);
  }

  async reserve(reservations: readonly Reservation[]): Promise<ReserveResult> {
    for (const r of reservations) {
      const current = this.read(r.key);
      if (current + r.amount > r.limit) return { ok: false, key: r.key, current, limit: r.limit };
    }
    for (const r of reservations) this.add(r.key, r.amount, r.ttlSeconds * 1000);
    return { ok: true };
  }

  async adjust(entries: ReadonlyArray<{ key: string; delta: number; ttlSeconds: number }>): Promise<void> {
    for (const e of entries) this.add(e.key, e.delta, e.ttlSeconds * 1000);
  }

  async take(key: string, amount: number, limit: number, windowMs: number, now: number): Promise<TakeResult> {
    const window = Math.floor(now / windowMs);
    const elapsed = (now - window * windowMs) / windowMs;
    const current = this.read(`${key}:${window}`);
    const previous = this.read(`${key}:${window - 1}`);
    const used = current + previous * (1 - elapsed);
    if (used + amount > limit) {
      return {
        allowed: false,
        used,
        retryAfterMs: retryAfter(current, previous, amount, limit, elapsed, windowMs),
      };
    }
    this.add(`${key}:${window}`, amount, 2 * windowMs);
    return { allowed: true, used: used + amount, retryAfterMs: 0 };
  }

  async record(key: string, amount: number, windowMs: number, now: number): Promise<void> {
    this.add(`${key}:${Math.floor(now / windowMs)}`, amount, 2 * windowMs);
  }

  async get(key: string): Promise<number> {
    return this.read(key);
  }

  /**
   * Every live, non-zero counter, then none: what this store counted, to hand to the shared store
   * once it is back. Expired ones (rate-limit windows that are over) are left out. Synchronous, so
   * no operation can count in between the snapshot and the clear.
   */
  drain(): CounterSnapshot[] {
    const now = this.now();
    const live: CounterSnapshot[] = [];
    for (const [key, c] of this.counters) {
      const ttlMs = c.expiresAt === 0 ? 0 : c.expiresAt - now;
      if (c.value !== 0 && (c.expiresAt === 0 || ttlMs > 0)) live.push({ key, value: c.value, ttlMs });
    }
    this.counters.clear();
    this.changes?.clear();
    return live;
  }

  async close(): Promise<void> {
    this.counters.clear();
  }
}

/**
 * Time until the weighted previous window has decayed enough for `amount` to fit (or the next
 * window starts, when the current window alone is too full).
 */
export function retryAfter(
  current: number,
  previous: number,
  amount: number,
  limit: number,
  elapsed: number,
  windowMs: number,
): number {
  const room = limit - amount - current;
  if (room < 0 || previous <= 0) return Math.ceil((1 - elapsed) * windowMs);
  const fraction = 1 - room / previous;
  return Math.max(1, Math.ceil((fraction - elapsed) * windowMs));
}

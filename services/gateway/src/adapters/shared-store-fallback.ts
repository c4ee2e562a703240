import { AppError, isAppError } from '@flowloom/errors';

/** When the shared store (Redis) is unreachable: `local` serves from this replica's own store, `closed` refuses. */
export type FallbackMode = 'local' | 'closed';

export interface SharedStoreFallbackOptions<S> {
  /** What the store holds, for status and errors: `limits`, `signals`. */
  what: string;
  mode: FallbackMode;
  /** The refusal in `closed` mode. */
  closedMessage?: string;
  onChange?: (degraded: boolean, reason: string) => void;
  /**
   * Runs on the shared store when it answers again, before it serves: hands over what only the
   * local store learned meanwhile. A failure keeps the fallback in use.
   */
  onRecover?: (shared: S) => Promise<void>;
  retryMs?: number;
  now?: () => number;
}

/**
 * Shared counters with a way to keep serving when they are unreachable, for every store that
 * replicas share through Redis (limits, signals): each operation runs on the shared store, and once
 * one fails, on the local one (or is refused) until the shared store is tried again after `retryMs`.
 * A store that is down at start is found by the first operation or readiness probe. The state is
 * reported for /readyz (`status`) and metrics (`onChange`).
 */
export class SharedStoreFallback<S extends { close(): Promise<void> }> {
  private failedAt: number | undefined;
  private lastError = '';
  private readonly retryMs: number;
  private readonly now: () => number;

  constructor(
    private readonly shared: S,
    private readonly local: S,
    private readonly options: SharedStoreFallbackOptions<S>,
  ) {
    this.retryMs = options.retryMs ?? 5_000;
    this.now = options.now ?? Date.now;
  }

  /** `ok`, or why the store is degraded and what is done meanwhile. */
  status(): string {
    if (this.failedAt === undefined) return 'ok';
    const meanwhile =
      this.options.mode === 'local' ? `using local ${this.options.what}` : 'refusing requests';
    return `degraded: ${this.lastError}; ${meanwhile}`;
  }

  get degraded(): boolean {
    return this.failedAt !== undefined;
  }

  async use<T>(op: (store: S) => Promise<T>): Promise<T> {
    if (this.failedAt === undefined || this.now() - this.failedAt >= this.retryMs) {
      try {
        const recovering = this.failedAt !== undefined;
        if (recovering) await this.options.onRecover?.(this.shared);
        const result = await op(this.shared);
        // Requests that waited on the same hand-over report the recovery once.
        if (recovering && this.failedAt !== undefined) {
          this.failedAt = undefined;
          this.options.onChange?.(false, `shared ${this.options.what} store is back`);
        }
        return result;
      } catch (error) {
        // An AppError is the store's answer (a refusal, a timeout), not a failure to reach it.
        if (isAppError(error)) throw error;
        const first = this.failedAt === undefined;
        this.failedAt = this.now();
        this.lastError = (error as Error).message;
        if (first) this.options.onChange?.(true, this.lastError);
      }
    }
    if (this.options.mode === 'closed') {
      throw new AppError(
        'unavailable',
        this.options.closedMessage ??
          `The ${this.options.what} store is unreachable right now. Retry shortly.`,
        { retryAfterSeconds: Math.ceil(this.retryMs / 1000) },
      );
    }
    return op(this.local);
  }

  /** For /readyz: tries the shared store when due (finding an outage, or a recovery, without traffic). */
  async probe(op: (store: S) => Promise<unknown>): Promise<string> {
    await this.use(op).catch(() => {});
    return this.status();
  }

  async close(): Promise<void> {
    await Promise.all([this.shared.close(), this.local.close()]);
  }
}

/** A store whose every operation goes through a SharedStoreFallback; reports it for /readyz. */
export abstract class FallbackStore<S extends { close(): Promise<void> }> {
  protected readonly fallback: SharedStoreFallback<S>;

  /** `readinessProbe` is a cheap read on the store that tells whether it answers. */
  constructor(
    shared: S,
    local: S,
    options: SharedStoreFallbackOptions<S>,
    private readonly readinessProbe: (store: S) => Promise<unknown>,
  ) {
    this.fallback = new SharedStoreFallback(shared, local, options);
  }

  /** `ok`, or why the shared store is not in use and what is done meanwhile. */
  status(): string {
    return this.fallback.status();
  }

  /** For /readyz: the status, trying the shared store first when due. */
  check(): Promise<string> {
    return this.fallback.probe(this.readinessProbe);
  }

  get degraded(): boolean {
    return this.fallback.degraded;
  }

  close(): Promise<void> {
    return this.fallback.close();
  }
}

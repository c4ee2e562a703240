export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
}

/**
 * Per-deployment circuit breaker: after `failureThreshold` consecutive failures the deployment is
 * skipped for `cooldownMs`; then one probe request is let through, and its outcome closes or reopens it.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;

  constructor(private readonly options: BreakerOptions) {}

  /** Whether a request may go to this deployment now; claims the single probe when half-open. */
  tryAcquire(now: number): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') {
      if (now - this.openedAt < this.options.cooldownMs) return false;
      this.state = 'half_open';
      this.probing = false;
    }
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  /** Whether `tryAcquire` would succeed, without claiming anything (for ordering candidates). */
  isAvailable(now: number): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') return now - this.openedAt >= this.options.cooldownMs;
    return !this.probing;
  }

  /** The request holding the probe went away without an answer: let another request probe. */
  release(): void {
    this.probing = false;
  }

  onSuccess(): void {
    this.state = 'closed';
    this.failures = 0;
    this.probing = false;
  }

  onFailure(now: number): void {
    this.failures++;
    if (this.state === 'half_open' || this.failures >= this.options.failureThreshold) {
      this.state = 'open';
      this.openedAt = now;
      this.probing = false;
    }
  }

  get current(): BreakerState {
    return this.state;
  }
}

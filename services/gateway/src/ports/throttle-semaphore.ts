import { AppError } from '@flowloom/errors';

/**
 * The queue of the throttle action: at most `limit` requests of one subject (job, session or key)
 * hold a turn at once, the others wait in arrival order. In-process for one gateway; shared through
 * Redis by every replica, with turns held as leases that expire when their gateway dies.
 */
export interface ThrottleRequest {
  subject: string;
  /** How many requests of the subject may hold a turn at once. */
  limit: number;
  maxWaitMs: number;
  signal: AbortSignal;
  /** Why it is queued, for the refusal after `maxWaitMs`. */
  explain: string;
}

export interface ThrottleSemaphore {
  /**
   * Resolves with the release of a turn once this request may run; rejects with `queueTimeout` after
   * `maxWaitMs`, or `callerGone` when `signal` aborts. Releasing twice frees one turn.
   */
  acquire(request: ThrottleRequest): Promise<() => void>;
  /** How many requests of `subject` wait for a turn now (not counting those holding one). */
  waiting(subject: string): Promise<number>;
  /** Resolves when the store answers (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The refusal of a request that waited its whole limit without a turn. */
export function queueTimeout(explain: string, maxWaitMs: number): AppError {
  return new AppError('rate_limited', `${explain}: waited ${maxWaitMs} ms in the queue without a turn.`, {
    retryAfterSeconds: Math.max(1, Math.ceil(maxWaitMs / 1000)),
  });
}

export function callerGone(): AppError {
  return new AppError('invalid_request', 'The caller went away while queued.');
}

/** Wraps a release so that only its first call counts. */
export function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

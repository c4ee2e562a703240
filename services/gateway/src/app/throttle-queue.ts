import { AppError } from '@flowloom/errors';

interface Waiter {
  grant: () => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Throttle by queueing: requests of one subject (job, session or key) run one at a time, in arrival
 * order; a request that waits longer than its limit is refused. Per gateway process.
 */
export class ThrottleQueues {
  private readonly queues = new Map<string, { busy: boolean; waiting: Waiter[] }>();

  /** Resolves to a release function once it is this request's turn. */
  async acquire(
    subject: string,
    maxWaitMs: number,
    signal: AbortSignal,
    explain: string,
  ): Promise<() => void> {
    let queue = this.queues.get(subject);
    if (!queue) {
      queue = { busy: false, waiting: [] };
      this.queues.set(subject, queue);
    }
    const q = queue;
    const release = (): void => {
      const next = q.waiting.shift();
      if (next) {
        if (next.timer) clearTimeout(next.timer);
        next.grant();
      } else {
        q.busy = false;
        this.queues.delete(subject);
      }
    };
    if (!q.busy) {
      q.busy = true;
      return once(release);
    }
    return new Promise<() => void>((resolve, reject) => {
      const waiter: Waiter = { grant: () => resolve(once(release)), timer: undefined };
      const leave = (error: Error): void => {
        const at = q.waiting.indexOf(waiter);
        if (at >= 0) q.waiting.splice(at, 1);
        reject(error);
      };
      waiter.timer = setTimeout(
        () =>
          leave(
            new AppError('rate_limited', `${explain}: waited ${maxWaitMs} ms in the queue without a turn.`, {
              retryAfterSeconds: Math.max(1, Math.ceil(maxWaitMs / 1000)),
            }),
          ),
        maxWaitMs,
      );
      signal.addEventListener(
        'abort',
        () => {
          if (waiter.timer) clearTimeout(waiter.timer);
          leave(new AppError('invalid_request', 'The caller went away while queued.'));
        },
        { once: true },
      );
      q.waiting.push(waiter);
    });
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/** Waits `ms`, or rejects when the caller goes away. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new AppError('invalid_request', 'The caller went away while throttled.'));
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new AppError('invalid_request', 'The caller went away while throttled.'));
      },
      { once: true },
    );
  });
}

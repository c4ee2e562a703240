import {
  callerGone,
  once,
  queueTimeout,
  type ThrottleRequest,
  type ThrottleSemaphore,
} from '../ports/throttle-semaphore.js';

interface Waiter {
  grant: () => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The throttle queue of one gateway process: exact, FIFO, nothing to expire (see ThrottleSemaphore). */
export class MemoryThrottleSemaphore implements ThrottleSemaphore {
  private readonly queues = new Map<string, { holding: number; waiting: Waiter[] }>();

  async waiting(subject: string): Promise<number> {
    return this.queues.get(subject)?.waiting.length ?? 0;
  }

  async acquire({ subject, limit, maxWaitMs, signal, explain }: ThrottleRequest): Promise<() => void> {
    if (signal.aborted) throw callerGone();
    let queue = this.queues.get(subject);
    if (!queue) {
      queue = { holding: 0, waiting: [] };
      this.queues.set(subject, queue);
    }
    const q = queue;
    const release = (): void => {
      const next = q.waiting.shift();
      if (next) {
        // The turn passes straight to the next waiter: `holding` stays the same.
        if (next.timer) clearTimeout(next.timer);
        next.grant();
        return;
      }
      q.holding--;
      if (q.holding === 0) this.queues.delete(subject);
    };
    if (q.holding < limit && q.waiting.length === 0) {
      q.holding++;
      return once(release);
    }
    return new Promise<() => void>((resolve, reject) => {
      const waiter: Waiter = { grant: () => resolve(once(release)), timer: undefined };
      const leave = (error: Error): void => {
        const at = q.waiting.indexOf(waiter);
        if (at >= 0) q.waiting.splice(at, 1);
        reject(error);
      };
      waiter.timer = setTimeout(() => leave(queueTimeout(explain, maxWaitMs)), maxWaitMs);
      signal.addEventListener(
        'abort',
        () => {
          if (waiter.timer) clearTimeout(waiter.timer);
          leave(callerGone());
        },
        { once: true },
      );
      q.waiting.push(waiter);
    });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

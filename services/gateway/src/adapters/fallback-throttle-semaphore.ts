import type { ThrottleRequest, ThrottleSemaphore } from '../ports/throttle-semaphore.js';
import { FallbackStore, type SharedStoreFallbackOptions } from './shared-store-fallback.js';

/**
 * The throttle queue shared through Redis, with its fallback (SharedStoreFallback, always `local`):
 * while Redis is unreachable a throttle holds per replica, as the limits do.
 */
export class FallbackThrottleSemaphore extends FallbackStore<ThrottleSemaphore> implements ThrottleSemaphore {
  constructor(
    shared: ThrottleSemaphore,
    local: ThrottleSemaphore,
    options: Pick<SharedStoreFallbackOptions<ThrottleSemaphore>, 'onChange' | 'retryMs' | 'now'> = {},
  ) {
    super(shared, local, { ...options, what: 'throttle queues', mode: 'local' }, (store) => store.ping());
  }

  acquire(request: ThrottleRequest): Promise<() => void> {
    return this.fallback.use((s) => s.acquire(request));
  }

  waiting(subject: string): Promise<number> {
    return this.fallback.use((s) => s.waiting(subject));
  }

  ping(): Promise<void> {
    return this.fallback.use((s) => s.ping());
  }
}

import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  callerGone,
  once,
  queueTimeout,
  type ThrottleRequest,
  type ThrottleSemaphore,
} from '../ports/throttle-semaphore.js';
import { connectRedis, openRedis } from './redis-client.js';

// Per subject: a sorted set of holders (lease id → lease expiry), a sorted set of waiters in arrival
// order (id → sequence number), a sorted set of when each waiter was last seen (a waiter whose
// gateway died stops polling and drops out), and the sequence counter. Times are Redis's own clock,
// so replicas with skewed clocks agree. One script per attempt, so replicas never race.
// KEYS: holders, queue, seen, seq; ARGV: id, limit, leaseMs, waiterTtlMs.
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, limit = ARGV[1], tonumber(ARGV[2])
local leaseMs, waiterTtl = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, w in ipairs(gone) do redis.call('ZREM', KEYS[2], w) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], id) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), id)
end
local keep = math.max(leaseMs, waiterTtl) * 2
local free = limit - redis.call('ZCARD', KEYS[1])
if redis.call('ZRANK', KEYS[2], id) < free then
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZADD', KEYS[1], now + leaseMs, id)
  redis.call('PEXPIRE', KEYS[1], keep)
  return 1
end
redis.call('ZADD', KEYS[3], now + waiterTtl, id)
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
return 0
`;

// KEYS: holders; ARGV: id, leaseMs. Extends a lease still held; 0 when it was lost.
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
`;

interface ThrottleCommands {
  flowloomThrottleAcquire(numKeys: number, ...args: Array<string | number>): Promise<number>;
  flowloomThrottleRenew(numKeys: number, ...args: Array<string | number>): Promise<number>;
}

export interface RedisThrottleOptions {
  prefix?: string;
  /** How long a turn is held without renewal: a gateway that dies frees its turns after this. */
  leaseMs?: number;
  /** How long a waiter stays in line without asking again. */
  waiterTtlMs?: number;
  /** How often a waiter asks again (a release in this process wakes its waiters at once). */
  pollMs?: number;
}

/** The throttle queue shared by every gateway replica through Redis (see ThrottleSemaphore). */
export class RedisThrottleSemaphore implements ThrottleSemaphore {
  private readonly redis: Redis & ThrottleCommands;
  private readonly prefix: string;
  private readonly leaseMs: number;
  private readonly waiterTtlMs: number;
  private readonly pollMs: number;
  /** Waiters in this process, woken when a turn of their subject is released here. */
  private readonly wakers = new Map<string, Set<() => void>>();
  private readonly renewals = new Set<ReturnType<typeof setInterval>>();

  private constructor(redis: Redis, options: RedisThrottleOptions) {
    redis.defineCommand('flowloomThrottleAcquire', { lua: ACQUIRE });
    redis.defineCommand('flowloomThrottleRenew', { lua: RENEW });
    this.redis = redis as Redis & ThrottleCommands;
    this.prefix = options.prefix ?? 'flowloom:';
    this.leaseMs = options.leaseMs ?? 15_000;
    this.waiterTtlMs = options.waiterTtlMs ?? 5_000;
    this.pollMs = options.pollMs ?? 50;
  }

  /** Does not fail when Redis is unreachable (see openRedis); a FallbackThrottleSemaphore serves meanwhile. */
  static async open(url: string, options: RedisThrottleOptions = {}): Promise<RedisThrottleSemaphore> {
    return new RedisThrottleSemaphore(await openRedis(url), options);
  }

  /** Connects and checks that Redis answers; fails with a message naming the URL otherwise. */
  static async connect(url: string, options: RedisThrottleOptions = {}): Promise<RedisThrottleSemaphore> {
    return new RedisThrottleSemaphore(await connectRedis(url), options);
  }

  // The hash tag keeps a subject's keys in one Redis Cluster slot.
  private keys(subject: string): string[] {
    const base = `${this.prefix}throttle:{${subject}}`;
    return [`${base}:h`, `${base}:q`, `${base}:s`, `${base}:n`];
  }

  async waiting(subject: string): Promise<number> {
    // Waiters whose gateway stopped renewing them are still counted until the next acquire sweeps them.
    return this.redis.zcard(this.keys(subject)[1] ?? '');
  }

  async acquire({ subject, limit, maxWaitMs, signal, explain }: ThrottleRequest): Promise<() => void> {
    const keys = this.keys(subject);
    const id = randomUUID();
    const deadline = Date.now() + maxWaitMs;
    try {
      for (;;) {
        if (signal.aborted) throw callerGone();
        const granted = await this.redis.flowloomThrottleAcquire(
          keys.length,
          ...keys,
          id,
          limit,
          this.leaseMs,
          this.waiterTtlMs,
        );
        if (granted === 1) return this.hold(subject, keys[0]!, id);
        const left = deadline - Date.now();
        if (left <= 0) throw queueTimeout(explain, maxWaitMs);
        await this.pause(subject, Math.min(this.pollMs, left), signal);
      }
    } catch (error) {
      // Out of line at once, so that the next one need not wait for this place to expire.
      await this.redis.zrem(keys[1]!, id).catch(() => {});
      await this.redis.zrem(keys[2]!, id).catch(() => {});
      throw error;
    }
  }

  /** A turn: renewed while held, so it outlives a long answer but not its gateway. */
  private hold(subject: string, holders: string, id: string): () => void {
    const renewal = setInterval(
      () => void this.redis.flowloomThrottleRenew(1, holders, id, this.leaseMs).catch(() => {}),
      Math.max(10, Math.floor(this.leaseMs / 3)),
    );
    renewal.unref();
    this.renewals.add(renewal);
    return once(() => {
      clearInterval(renewal);
      this.renewals.delete(renewal);
      void this.redis
        .zrem(holders, id)
        .catch(() => {})
        .finally(() => {
          for (const wake of this.wakers.get(subject) ?? []) wake();
        });
    });
  }

  private pause(subject: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let wakers = this.wakers.get(subject);
      if (!wakers) {
        wakers = new Set();
        this.wakers.set(subject, wakers);
      }
      const set = wakers;
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.wakers.get(subject) === set) this.wakers.delete(subject);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** Stops renewing (held turns then expire after the lease) and disconnects. */
  async close(): Promise<void> {
    for (const renewal of this.renewals) clearInterval(renewal);
    this.renewals.clear();
    this.redis.disconnect();
  }
}

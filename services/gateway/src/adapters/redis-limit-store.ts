import type { Redis } from 'ioredis';
import type { LimitStore, Reservation, ReserveResult, TakeResult } from '../ports/limit-store.js';
import { type CounterSnapshot, retryAfter } from './memory-limit-store.js';
import { connectRedis, openRedis } from './redis-client.js';

// Check-then-add across all buckets in one script: Redis runs a script atomically, so N gateway
// replicas reserving against one budget are serialized here and can never jointly pass its limit.
const RESERVE = `
for i = 1, #KEYS do
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if current + tonumber(ARGV[(i - 1) * 3 + 1]) > tonumber(ARGV[(i - 1) * 3 + 2]) then
    return {i, current}
  end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[(i - 1) * 3 + 1])
  local ttl = tonumber(ARGV[(i - 1) * 3 + 3])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return {0, 0}
`;

// Sliding-window counter: this window's count plus the previous one's, weighted by how much of it
// still overlaps the last minute.
const TAKE = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local amount = tonumber(ARGV[1])
local used = current + previous * (1 - tonumber(ARGV[3]))
if used + amount > tonumber(ARGV[2]) then
  return {0, tostring(used), current, previous}
end
redis.call('INCRBY', KEYS[1], amount)
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[4]))
return {1, tostring(used + amount), current + amount, previous}
`;

// Adds to counters and sets their expiry in one step, so a counter never outlives its period: the
// settling of a request (a budget's real cost, a window's real tokens) is one command per call, and
// the calls of one request leave in one write (see corkWrites).
// KEYS: the counters; ARGV: per counter, the amount and the expiry (0: none), then 'ms' or 's'.
const ADD = `
local expire = ARGV[#ARGV] == 'ms' and 'PEXPIRE' or 'EXPIRE'
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[(i - 1) * 2 + 1])
  local ttl = tonumber(ARGV[(i - 1) * 2 + 2])
  if ttl > 0 then redis.call(expire, KEYS[i], ttl) end
end
return 0
`;

// Adds what a replica counted locally during an outage, once: KEYS[1] marks the batch as applied
// (SET NX), so a retry of the batch after a lost reply adds nothing, and being one script, a replica
// that dies mid-hand-over has added all of it or none. A counter keeps the longer of its own expiry
// and the handed one.
const HAND_OVER = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #KEYS do
  local left = redis.call('PTTL', KEYS[i])
  redis.call('INCRBY', KEYS[i], ARGV[(i - 2) * 2 + 2])
  local ttl = tonumber(ARGV[(i - 2) * 2 + 3])
  if ttl > 0 and (left == -2 or (left >= 0 and left < ttl)) then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
`;

/** How long a hand-over batch is remembered as applied: far longer than every retry of it. */
const HAND_OVER_MARK_SECONDS = 24 * 3600;

type ScriptReply = [number, number | string, number?, number?];

interface LimitCommands {
  flowloomReserve(numKeys: number, ...args: Array<string | number>): Promise<ScriptReply>;
  flowloomTake(numKeys: number, ...args: Array<string | number>): Promise<ScriptReply>;
  flowloomHandOver(numKeys: number, ...args: Array<string | number>): Promise<number>;
  flowloomAdd(numKeys: number, ...args: Array<string | number>): Promise<number>;
}

/** Budgets and rate limits in Redis, shared by every gateway replica. */
export class RedisLimitStore implements LimitStore {
  private readonly redis: Redis & LimitCommands;
  private corked = false;

  private constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand('flowloomReserve', { lua: RESERVE });
    redis.defineCommand('flowloomTake', { lua: TAKE });
    redis.defineCommand('flowloomHandOver', { lua: HAND_OVER });
    redis.defineCommand('flowloomAdd', { lua: ADD });
    this.redis = redis as Redis & LimitCommands;
  }

  /**
   * The commands sent in this turn of the event loop leave in one write: a request asks for its rate
   * windows and its budgets at once (Limiter), and concurrent requests often do the same, so they
   * share a system call and Redis answers them from one read.
   */
  private corkWrites(): void {
    if (this.corked) return;
    const stream = this.redis.stream;
    if (!stream || stream.writableCorked > 0) return;
    stream.cork();
    this.corked = true;
    process.nextTick(() => {
      this.corked = false;
      stream.uncork();
    });
  }

  /**
   * Does not fail when Redis is unreachable (see openRedis): commands fail at once meanwhile and the
   * client keeps reconnecting, so a FallbackLimitStore can serve meanwhile.
   */
  static async open(url: string, prefix = 'flowloom:'): Promise<RedisLimitStore> {
    return new RedisLimitStore(await openRedis(url), prefix);
  }

  /** Connects and checks that Redis answers; fails with a message naming the URL otherwise. */
  static async connect(url: string, prefix = 'flowloom:'): Promise<RedisLimitStore> {
    return new RedisLimitStore(await connectRedis(url), prefix);
  }

  async reserve(reservations: readonly Reservation[]): Promise<ReserveResult> {
    if (reservations.length === 0) return { ok: true };
    const keys = reservations.map((r) => this.prefix + r.key);
    const args = reservations.flatMap((r) => [Math.round(r.amount), Math.round(r.limit), r.ttlSeconds]);
    this.corkWrites();
    const [index, current] = await this.redis.flowloomReserve(keys.length, ...keys, ...args);
    if (index === 0) return { ok: true };
    const failed = reservations[index - 1]!;
    return { ok: false, key: failed.key, current: Number(current), limit: failed.limit };
  }

  async adjust(entries: ReadonlyArray<{ key: string; delta: number; ttlSeconds: number }>): Promise<void> {
    if (entries.length === 0) return;
    this.corkWrites();
    await this.redis.flowloomAdd(
      entries.length,
      ...entries.map((e) => this.prefix + e.key),
      ...entries.flatMap((e) => [Math.round(e.delta), Math.max(0, e.ttlSeconds)]),
      's',
    );
  }

  async take(key: string, amount: number, limit: number, windowMs: number, now: number): Promise<TakeResult> {
    const window = Math.floor(now / windowMs);
    const elapsed = (now - window * windowMs) / windowMs;
    this.corkWrites();
    const reply = await this.redis.flowloomTake(
      2,
      `${this.prefix}${key}:${window}`,
      `${this.prefix}${key}:${window - 1}`,
      Math.round(amount),
      limit,
      elapsed,
      windowMs,
    );
    const used = Number(reply[1]);
    if (reply[0] === 1) return { allowed: true, used, retryAfterMs: 0 };
    return {
      allowed: false,
      used,
      retryAfterMs: retryAfter(Number(reply[2]), Number(reply[3]), amount, limit, elapsed, windowMs),
    };
  }

  async record(key: string, amount: number, windowMs: number, now: number): Promise<void> {
    this.corkWrites();
    await this.redis.flowloomAdd(
      1,
      `${this.prefix}${key}:${Math.floor(now / windowMs)}`,
      Math.round(amount),
      2 * windowMs,
      'ms',
    );
  }

  /**
   * Adds `counters` (counted elsewhere, e.g. locally during an outage) in one atomic step, unless the
   * batch `id` was already applied. Returns whether it added them.
   */
  async handOver(id: string, counters: readonly CounterSnapshot[]): Promise<boolean> {
    const keys = [`${this.prefix}handover:${id}`, ...counters.map((c) => this.prefix + c.key)];
    const args = counters.flatMap((c) => [Math.round(c.value), Math.ceil(c.ttlMs)]);
    return (await this.redis.flowloomHandOver(keys.length, ...keys, HAND_OVER_MARK_SECONDS, ...args)) === 1;
  }

  async get(key: string): Promise<number> {
    return Number((await this.redis.get(this.prefix + key)) ?? 0);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

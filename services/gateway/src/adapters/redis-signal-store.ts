import type { Redis } from 'ioredis';
import { type JobStop, parseJobStop } from '../domain/jobs.js';
import type { PromptMark, SignalWindows, WindowTotals } from '../domain/signals.js';
import type { SignalOutcome, SignalStore } from '../ports/signal-store.js';
import { connectRedis, openRedis } from './redis-client.js';

// One hash per subject holds a ring of buckets (field i<s> = the bucket index slot s holds, then
// r/f/e/c/t<s> = requests, finished, errors, cost micros, tokens) plus `first` and `total`; a list
// holds the recent prompt fingerprints. Each call is one script over all the subjects of a request
// (its job, session and key), so replicas never race and a request costs one round trip.
// KEYS: hash and prompt list of each subject[, job stop]; ARGV: mode (o observe, p peek, r record),
// now, bucketMs, buckets, fingerprint, maxPrompts, idleMs, costMicros, tokens, failed (1/0), subjects.
// Returns, per subject, its totals (false for a peek of an idle subject; 0 for a record), then the stop.
const SIGNALS = `
local mode = ARGV[1]
local now = tonumber(ARGV[2])
local bucketMs = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local maxPrompts = tonumber(ARGV[6])
local idleMs = tonumber(ARGV[7])
local count = tonumber(ARGV[11])
local bucket = math.floor(now / bucketMs)
local slot = bucket % n
local names = {'r', 'f', 'e', 'c', 't'}
local function one(h, p)
  local last = tonumber(redis.call('HGET', h, 'last') or '-1')
  if last >= 0 and now - last > idleMs then
    redis.call('DEL', h, p)
  end
  if mode ~= 'p' then
    if tonumber(redis.call('HGET', h, 'i' .. slot) or '-1') ~= bucket then
      redis.call('HSET', h, 'i' .. slot, bucket, 'r' .. slot, 0, 'f' .. slot, 0, 'e' .. slot, 0, 'c' .. slot, 0, 't' .. slot, 0)
    end
    redis.call('HSETNX', h, 'first', now)
    redis.call('HSET', h, 'last', now)
    redis.call('PEXPIRE', h, idleMs)
    if mode == 'r' then
      redis.call('HINCRBY', h, 'f' .. slot, 1)
      if ARGV[10] == '1' then redis.call('HINCRBY', h, 'e' .. slot, 1) end
      redis.call('HINCRBY', h, 'c' .. slot, ARGV[8])
      redis.call('HINCRBY', h, 't' .. slot, ARGV[9])
      redis.call('HINCRBY', h, 'total', ARGV[8])
      return 0
    end
    redis.call('HINCRBY', h, 'r' .. slot, 1)
  end
  local first = redis.call('HGET', h, 'first')
  if not first then return false end
  local sums = {0, 0, 0, 0, 0}
  for s = 0, n - 1 do
    local index = tonumber(redis.call('HGET', h, 'i' .. s) or '-1')
    if index > bucket - n and index <= bucket then
      local values = redis.call('HMGET', h, 'r' .. s, 'f' .. s, 'e' .. s, 'c' .. s, 't' .. s)
      for k = 1, 5 do sums[k] = sums[k] + tonumber(values[k] or '0') end
    end
  end
  local prompts = redis.call('LRANGE', p, 0, maxPrompts - 1)
  if mode == 'o' and ARGV[5] ~= '' then
    redis.call('LPUSH', p, ARGV[2] .. ':' .. ARGV[5])
    redis.call('LTRIM', p, 0, maxPrompts - 1)
    redis.call('PEXPIRE', p, idleMs)
  end
  return {sums[1], sums[2], sums[3], sums[4], sums[5], tonumber(first), tonumber(redis.call('HGET', h, 'total') or '0'), prompts}
end
local out = {}
for i = 1, count do out[i] = one(KEYS[2 * i - 1], KEYS[2 * i]) end
local stop = false
if #KEYS > 2 * count then stop = redis.call('GET', KEYS[2 * count + 1]) end
out[count + 1] = stop
return out
`;

type TotalsReply = [number, number, number, number, number, number, number, string[]] | null | 0;
/** One TotalsReply per subject, then the job's stop record (null without one). */
type SignalsReply = Array<TotalsReply | string | null>;

interface SignalCommands {
  flowloomSignals(numKeys: number, ...args: Array<string | number>): Promise<SignalsReply>;
}

/** Runaway signals and job stops in Redis, shared by every gateway replica. */
export class RedisSignalStore implements SignalStore {
  private readonly redis: Redis & SignalCommands;

  private constructor(
    redis: Redis,
    private readonly windows: SignalWindows,
    private readonly prefix: string,
  ) {
    redis.defineCommand('flowloomSignals', { lua: SIGNALS });
    this.redis = redis as Redis & SignalCommands;
  }

  /**
   * Does not fail when Redis is unreachable (see openRedis): commands fail at once meanwhile and the
   * client keeps reconnecting, so a FallbackSignalStore can serve meanwhile.
   */
  static async open(url: string, windows: SignalWindows, prefix = 'flowloom:'): Promise<RedisSignalStore> {
    return new RedisSignalStore(await openRedis(url), windows, prefix);
  }

  /** Connects and checks that Redis answers; fails with a message naming the URL otherwise. */
  static async connect(url: string, windows: SignalWindows, prefix = 'flowloom:'): Promise<RedisSignalStore> {
    return new RedisSignalStore(await connectRedis(url), windows, prefix);
  }

  // The hash tag keeps a subject's keys (and a job's stop record next to its counters) together.
  private keys(subjects: readonly string[], job?: string): string[] {
    const keys: string[] = [];
    for (const subject of subjects) {
      const base = `${this.prefix}sig:{${subject}}`;
      keys.push(base, `${base}:p`);
    }
    if (job !== undefined) keys.push(this.jobKey(job));
    return keys;
  }

  private jobKey(job: string): string {
    return `${this.prefix}sig:{job/${job}}:stop`;
  }

  private run(
    subjects: readonly string[],
    job: string | undefined,
    mode: 'o' | 'p' | 'r',
    now: number,
    fingerprint = '',
    outcome?: SignalOutcome,
  ): Promise<SignalsReply> {
    const w = this.windows;
    const keys = this.keys(subjects, job);
    return this.redis.flowloomSignals(
      keys.length,
      ...keys,
      mode,
      Math.floor(now),
      w.bucketMs,
      w.buckets,
      fingerprint,
      w.maxPrompts,
      w.idleMs,
      Math.round(outcome?.costMicros ?? 0),
      Math.round(outcome?.tokens ?? 0),
      outcome?.failed ? '1' : '0',
      subjects.length,
    );
  }

  async observe(
    subjects: readonly string[],
    now: number,
    fingerprint: string | undefined,
    job: string | undefined,
  ): Promise<{ totals: WindowTotals[]; stop: JobStop | undefined }> {
    const reply = await this.run(subjects, job, 'o', now, fingerprint ?? '');
    const totals = subjects.map((_, i) => {
      const t = toTotals(reply[i]);
      if (!t) throw new Error('signal store: observe returned no totals');
      return t;
    });
    const stop = reply[subjects.length];
    return { totals, stop: typeof stop === 'string' ? parseJobStop(stop) : undefined };
  }

  async peek(subject: string, now: number): Promise<WindowTotals | undefined> {
    return toTotals((await this.run([subject], undefined, 'p', now))[0]);
  }

  async record(subjects: readonly string[], now: number, outcome: SignalOutcome): Promise<void> {
    if (subjects.length === 0) return;
    await this.run(subjects, undefined, 'r', now, '', outcome);
  }

  async stopJob(stop: JobStop): Promise<void> {
    await this.redis.set(this.jobKey(stop.job), JSON.stringify(stop));
  }

  async clearJob(job: string): Promise<JobStop | undefined> {
    return parseJobStop(await this.redis.getdel(this.jobKey(job)));
  }

  async jobStop(job: string): Promise<JobStop | undefined> {
    return parseJobStop(await this.redis.get(this.jobKey(job)));
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

function toTotals(reply: TotalsReply | string | null | undefined): WindowTotals | undefined {
  if (!Array.isArray(reply)) return undefined;
  const [requests, finished, errors, costMicros, tokens, firstSeenAt, totalCostMicros, prompts] = reply;
  return {
    requests: Number(requests),
    finished: Number(finished),
    errors: Number(errors),
    costMicros: Number(costMicros),
    tokens: Number(tokens),
    firstSeenAt: Number(firstSeenAt),
    totalCostMicros: Number(totalCostMicros),
    prompts: (prompts ?? []).map(parseMark).filter((m): m is PromptMark => m !== undefined),
  };
}

function parseMark(entry: string): PromptMark | undefined {
  const colon = entry.indexOf(':');
  if (colon < 0) return undefined;
  return { at: Number(entry.slice(0, colon)), fingerprint: entry.slice(colon + 1) };
}

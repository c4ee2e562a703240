import type { CacheControl, ChatRequest } from '@flowloom/providers';
import type { Price } from './prices.js';

export type LimitScope = 'key' | 'project' | 'team' | 'job';
export type BudgetPeriod = 'day' | 'month' | 'total';

/** A spend limit: on one subject (`id`) or, without `id`, on each subject of the scope. */
export interface BudgetRule {
  scope: LimitScope;
  id?: string;
  period: BudgetPeriod;
  limitUsd: number;
}

export interface RateRule {
  scope: LimitScope;
  id?: string;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

export interface Subject {
  key: string;
  project?: string | undefined;
  team?: string | undefined;
  job?: string | undefined;
}

export interface Bucket {
  /** Storage key, e.g. `budget:project:alpha:day:2026-11-22`. */
  key: string;
  /** Micro-dollars, so counters stay integers. */
  limit: number;
  ttlSeconds: number;
  /** For messages: `project alpha, per day, $10.00`. */
  label: string;
  /** When the bucket starts over (undefined for `total`). */
  resetsAt?: Date;
}

export const MICROS = 1_000_000;

function idFor(scope: LimitScope, subject: Subject): string | undefined {
  return scope === 'key' ? subject.key : subject[scope];
}

function periodWindow(period: BudgetPeriod, now: Date): { tag: string; resetsAt?: Date; ttlSeconds: number } {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  if (period === 'day') {
    const resetsAt = new Date(Date.UTC(y, m, now.getUTCDate() + 1));
    return { tag: now.toISOString().slice(0, 10), resetsAt, ttlSeconds: 2 * 86_400 };
  }
  if (period === 'month') {
    const resetsAt = new Date(Date.UTC(y, m + 1, 1));
    return { tag: now.toISOString().slice(0, 7), resetsAt, ttlSeconds: 40 * 86_400 };
  }
  return { tag: 'all', ttlSeconds: 0 };
}

/** The budget buckets a request of `subject` draws on at `now`. */
export function budgetBuckets(rules: readonly BudgetRule[], subject: Subject, now: Date): Bucket[] {
  const buckets: Bucket[] = [];
  for (const rule of rules) {
    const id = idFor(rule.scope, subject);
    if (id === undefined || (rule.id !== undefined && rule.id !== id)) continue;
    const window = periodWindow(rule.period, now);
    buckets.push({
      key: `budget:${rule.scope}:${id}:${rule.period}:${window.tag}`,
      limit: Math.round(rule.limitUsd * MICROS),
      ttlSeconds: window.ttlSeconds,
      label: `${rule.scope} ${id}, ${rule.period === 'total' ? 'in total' : `per ${rule.period}`}, $${rule.limitUsd.toFixed(2)}`,
      ...(window.resetsAt ? { resetsAt: window.resetsAt } : {}),
    });
  }
  return buckets;
}

export interface RateBucket {
  key: string;
  limit: number;
  kind: 'requests' | 'tokens';
  label: string;
}

/** The per-minute windows a request of `subject` counts against. */
export function rateBuckets(rules: readonly RateRule[], subject: Subject): RateBucket[] {
  const out: RateBucket[] = [];
  for (const rule of rules) {
    const id = idFor(rule.scope, subject);
    if (id === undefined || (rule.id !== undefined && rule.id !== id)) continue;
    if (rule.requestsPerMinute !== undefined) {
      out.push({
        key: `rate:rpm:${rule.scope}:${id}`,
        limit: rule.requestsPerMinute,
        kind: 'requests',
        label: `${rule.scope} ${id}: ${rule.requestsPerMinute} requests per minute`,
      });
    }
    if (rule.tokensPerMinute !== undefined) {
      out.push({
        key: `rate:tpm:${rule.scope}:${id}`,
        limit: rule.tokensPerMinute,
        kind: 'tokens',
        label: `${rule.scope} ${id}: ${rule.tokensPerMinute} tokens per minute`,
      });
    }
  }
  return out;
}

/**
 * The most a request can cost: its input at the input price plus the whole output allowance at the
 * output price, for the dearest deployment it may fall back to. Reserving this before the call is
 * what keeps concurrent requests from jointly overshooting a budget.
 */
export function worstCaseMicros(
  inputTokens: number,
  maxOutputTokens: number,
  prices: ReadonlyArray<Price | undefined>,
): number {
  let worst = 0;
  for (const p of prices) {
    if (!p) continue;
    worst = Math.max(worst, inputTokens * p.input + maxOutputTokens * p.output);
  }
  return Math.ceil(worst);
}

/** The prompt-cache writes a request may cause: none, five-minute ones, or one-hour ones too. */
export type CacheWrites = 'none' | '5m' | '1h';

/**
 * Reads the request's cache breakpoints (Anthropic `cache_control`, top level and on any block). A
 * breakpoint may make the provider write the whole prefix before it to the cache, billed above plain
 * input; `ttl: '1h'` at the one-hour rate.
 */
export function cacheWritesOf(request: ChatRequest): CacheWrites {
  let writes: CacheWrites = 'none';
  const see = (marker: CacheControl | undefined): void => {
    if (!marker) return;
    writes = marker.ttl === '1h' ? '1h' : writes === 'none' ? '5m' : writes;
  };
  see(request.cacheControl);
  for (const tool of request.tools ?? []) see(tool.cacheControl);
  for (const message of request.messages) {
    if (message.role === 'user') for (const part of message.content) see(part.cacheControl);
    else {
      see(message.cacheControl);
      if (message.role === 'assistant') for (const call of message.toolCalls ?? []) see(call.cacheControl);
    }
  }
  return writes;
}

/**
 * The price a reservation assumes. A request with cache breakpoints may have every input token billed
 * as a cache write, so its input is reserved at the dearest rate a write of that kind can cost (rates
 * fall back as in `costOf`); without breakpoints, at the input rate. This keeps the reservation at or
 * above the real cost, which is what bounds a budget's overshoot to one reservation.
 */
export function reservationPrice(price: Price | undefined, writes: CacheWrites): Price | undefined {
  if (!price || writes === 'none') return price;
  const fiveMinutes = price.cacheWriteInput ?? price.input;
  const oneHour = writes === '1h' ? (price.cacheWrite1hInput ?? fiveMinutes) : fiveMinutes;
  return { ...price, input: Math.max(price.input, fiveMinutes, oneHour) };
}

export function usdFromMicros(micros: number): string {
  return `$${(micros / MICROS).toFixed(micros < 10_000 ? 4 : 2)}`;
}

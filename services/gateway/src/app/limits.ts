import { AppError } from '@flowloom/errors';
import {
  type Bucket,
  type BudgetRule,
  budgetBuckets,
  MICROS,
  type RateBucket,
  type RateRule,
  rateBuckets,
  type Subject,
  usdFromMicros,
  worstCaseMicros,
} from '../domain/budget.js';
import type { Price } from '../domain/prices.js';
import type { LimitStore, ReserveResult, TakeResult } from '../ports/limit-store.js';
import type { RequestContext } from './context.js';

const MINUTE = 60_000;
/** The output allowance of a request without max_tokens, unless `defaultMaxOutputTokens` says otherwise. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;

export interface LimiterOptions {
  /** Reserved, and sent upstream as max_tokens, for a request without one that a budget applies to. */
  defaultMaxOutputTokens?: number;
  now?: () => number;
}

/** What a request holds until it settles: its budget reservations and its token-rate entries. */
export interface Hold {
  /** Replaces the reservation with the real cost and records the real tokens. */
  settle(costUsd: number, tokens: number): Promise<void>;
}

const NOTHING_HELD: Hold = { settle: async () => {} };

/**
 * Settles a hold once the call is over, alongside the request's event rather than before it, and
 * never failing the request: the caller has its answer (or error), and its event must be written. A
 * settle that fails leaves the reservation counted (never less than the real cost, but for an input
 * estimate counted short).
 */
export function settleAfterCall(hold: Hold, costUsd: number, tokens: number): Promise<void> {
  return hold.settle(costUsd, tokens).catch(() => {});
}

export function subjectOf(ctx: RequestContext): Subject {
  return {
    key: ctx.key.id,
    project: ctx.tags.project ?? ctx.key.project ?? undefined,
    team: ctx.key.team ?? undefined,
    job: ctx.tags.job,
  };
}

/**
 * Budgets and rate limits around one request: the rate windows are checked, then the worst-case cost
 * is reserved atomically on every budget that applies (only if it fits the limit with what is spent and
 * reserved already); after the answer the reservation is replaced by the actual cost. While each bill
 * stays within its reservation, concurrent requests, from every replica on one store, never
 * pass the limit; a bill above its reservation (an input estimate counted short) passes it by that
 * excess alone.
 */
export class Limiter {
  readonly defaultMaxOutputTokens: number;
  private readonly now: () => number;

  constructor(
    private readonly store: LimitStore,
    private readonly budgets: readonly BudgetRule[],
    private readonly rates: readonly RateRule[],
    options: LimiterOptions = {},
  ) {
    this.defaultMaxOutputTokens = options.defaultMaxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
    this.now = options.now ?? Date.now;
  }

  /** Whether a spend budget applies to this request's key, project, team or job. */
  budgetApplies(ctx: RequestContext): boolean {
    return (
      this.budgets.length > 0 && budgetBuckets(this.budgets, subjectOf(ctx), new Date(this.now())).length > 0
    );
  }

  get active(): boolean {
    return this.budgets.length > 0 || this.rates.length > 0;
  }

  async acquire(
    ctx: RequestContext,
    inputTokens: number,
    maxOutputTokens: number,
    prices: ReadonlyArray<Price | undefined>,
  ): Promise<Hold> {
    if (!this.active) return NOTHING_HELD;
    const subject = subjectOf(ctx);
    const now = this.now();
    const rates = rateBuckets(this.rates, subject);
    const buckets = budgetBuckets(this.budgets, subject, new Date(now));
    const reserved = worstCaseMicros(inputTokens, maxOutputTokens, prices);
    // Every window and the budgets are asked at once: one round trip to a shared store instead of one
    // per bucket in turn. A refusal takes back what the other buckets counted, so a refused request
    // holds nothing, as when they were asked one after the other.
    const reservations = buckets.map((b) => ({
      key: b.key,
      amount: reserved,
      limit: b.limit,
      ttlSeconds: b.ttlSeconds,
    }));
    const takes = rates.map((bucket) => ({ bucket, amount: bucket.kind === 'requests' ? 1 : inputTokens }));
    const [taken, reservation] = await Promise.all([
      Promise.allSettled(
        takes.map((t) => this.store.take(t.bucket.key, t.amount, t.bucket.limit, MINUTE, now)),
      ),
      Promise.allSettled(buckets.length > 0 ? [this.store.reserve(reservations)] : []),
    ]);
    const reserveOutcome = reservation[0];
    const refusal =
      takes.map((t, i) => rateRefusal(t.bucket, taken[i]!)).find((r) => r !== undefined) ??
      (reserveOutcome && budgetRefusal(buckets, reserveOutcome, reserved, now));
    if (refusal) {
      await this.undo(
        takes.filter((_, i) => allowed(taken[i]!)),
        reserveOutcome?.status === 'fulfilled' && reserveOutcome.value.ok
          ? buckets.map((b) => ({ key: b.key, delta: -reserved, ttlSeconds: b.ttlSeconds }))
          : [],
        now,
      );
      throw refusal.error;
    }
    const tokenKeys = rates.filter((b) => b.kind === 'tokens').map((b) => b.key);
    let settled = false;
    return {
      settle: async (costUsd, tokens) => {
        if (settled) return;
        settled = true;
        const actual = Math.round(costUsd * MICROS);
        const at = this.now();
        await Promise.all([
          buckets.length > 0 && actual !== reserved
            ? this.store.adjust(
                buckets.map((b) => ({ key: b.key, delta: actual - reserved, ttlSeconds: b.ttlSeconds })),
              )
            : undefined,
          ...tokenKeys.map((key) => this.store.record(key, tokens - inputTokens, MINUTE, at)),
        ]);
      },
    };
  }

  /** Takes back what a refused request counted: its window entries and its reservation, at once. */
  private async undo(
    takes: ReadonlyArray<{ bucket: RateBucket; amount: number }>,
    reservations: ReadonlyArray<{ key: string; delta: number; ttlSeconds: number }>,
    now: number,
  ): Promise<void> {
    await Promise.all([
      ...takes.map((t) => this.store.record(t.bucket.key, -t.amount, MINUTE, now)),
      reservations.length > 0 ? this.store.adjust(reservations) : undefined,
    ]);
  }
}

const allowed = (outcome: PromiseSettledResult<TakeResult>): boolean =>
  outcome.status === 'fulfilled' && outcome.value.allowed;

/** Why a window refused the request (or the store's error, when it could not be asked), if it did. */
function rateRefusal(
  bucket: RateBucket,
  outcome: PromiseSettledResult<TakeResult>,
): { error: unknown } | undefined {
  if (outcome.status === 'rejected') return { error: outcome.reason };
  const result = outcome.value;
  if (result.allowed) return undefined;
  const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
  return {
    error: new AppError(
      'rate_limited',
      `Rate limit reached for ${bucket.label} (${Math.floor(result.used)} used in the last minute). Retry in ${seconds} s.`,
      { retryAfterSeconds: seconds, details: { limit: bucket.label } },
    ),
  };
}

/** Why the budgets refused the request (or the store's error), if they did. */
function budgetRefusal(
  buckets: readonly Bucket[],
  outcome: PromiseSettledResult<ReserveResult>,
  reserved: number,
  now: number,
): { error: unknown } | undefined {
  if (outcome.status === 'rejected') return { error: outcome.reason };
  const result = outcome.value;
  if (result.ok) return undefined;
  const bucket = buckets.find((b) => b.key === result.key)!;
  const resets = bucket.resetsAt
    ? ` It resets at ${bucket.resetsAt.toISOString()}.`
    : ' Ask an admin to raise it.';
  return {
    error: new AppError(
      'budget_exceeded',
      `Budget exceeded for ${bucket.label}: ${usdFromMicros(result.current)} spent, and this request may cost up to ${usdFromMicros(reserved)}.${resets}`,
      {
        ...(bucket.resetsAt
          ? { retryAfterSeconds: Math.ceil((bucket.resetsAt.getTime() - now) / 1000) }
          : {}),
        details: { budget: bucket.label },
      },
    ),
  };
}

import type { SignalsConfig } from '@flowloom/config';
import type { SignalValues } from '@flowloom/policy-engine';

/**
 * Runaway signals over sliding windows, per subject (a job, else a session, else a key). Pure: the
 * counters live in a SignalStore; this file turns them into the `signals.*` values policies read.
 */

/** How the windows are cut: `buckets` buckets of `bucketMs` make one window. */
export interface SignalWindows {
  readonly windowMs: number;
  readonly bucketMs: number;
  readonly buckets: number;
  readonly repeatWindowMs: number;
  readonly maxPrompts: number;
  readonly nearDuplicateBits: number;
  readonly idleMs: number;
}

const BUCKETS = 12;

export function signalWindows(config: SignalsConfig): SignalWindows {
  const windowMs = config.windowSeconds * 1000;
  return {
    windowMs,
    bucketMs: Math.ceil(windowMs / BUCKETS),
    buckets: BUCKETS,
    repeatWindowMs: config.repeatWindowSeconds * 1000,
    maxPrompts: config.maxPrompts,
    nearDuplicateBits: config.nearDuplicateBits,
    idleMs: Math.max(config.idleSeconds * 1000, windowMs * 2, config.repeatWindowSeconds * 1000),
  };
}

/** A recent prompt of the subject: when it was sent and its fingerprint (see `promptFingerprint`). */
export interface PromptMark {
  readonly at: number;
  readonly fingerprint: string;
}

/** What a store keeps about one subject, summed over the current window. */
export interface WindowTotals {
  /** Requests counted in the window (the observed one included). */
  readonly requests: number;
  /** Requests whose outcome was recorded, and how many of them failed upstream. */
  readonly finished: number;
  readonly errors: number;
  readonly costMicros: number;
  readonly tokens: number;
  /** First request of the subject (it resets after `idleMs` without traffic). */
  readonly firstSeenAt: number;
  /** Spend since `firstSeenAt`, for the subject's own baseline. */
  readonly totalCostMicros: number;
  /** Earlier prompts, most recent first (the observed one excluded). */
  readonly prompts: readonly PromptMark[];
}

export const MICROS_PER_USD = 1_000_000;

/**
 * The signals a policy reads. Rates are per minute over the window. `baseline_ratio` compares the
 * window's spend rate with the subject's own rate before the window; it is 0 until there is at least
 * one window of earlier history with some spend, so a young job is never "above its baseline".
 */
export function computeSignals(
  totals: WindowTotals,
  windows: SignalWindows,
  now: number,
  fingerprint: string | undefined,
  toolCallDepth: number,
): Required<SignalValues> {
  const perMinute = 60_000 / windows.windowMs;
  const spendPerMinute = (totals.costMicros / MICROS_PER_USD) * perMinute;
  const ageMs = Math.max(0, now - totals.firstSeenAt);
  const priorMs = ageMs - windows.windowMs;
  const priorCost = (totals.totalCostMicros - totals.costMicros) / MICROS_PER_USD;
  const baselinePerMinute = priorMs >= windows.windowMs && priorCost > 0 ? priorCost / (priorMs / 60_000) : 0;
  return {
    spend_per_minute: round(spendPerMinute),
    tokens_per_minute: round(totals.tokens * perMinute),
    requests_per_minute: round(totals.requests * perMinute),
    repeated_prompts:
      fingerprint === undefined
        ? 0
        : countRepeats(totals.prompts, fingerprint, now - windows.repeatWindowMs, windows.nearDuplicateBits),
    error_rate: totals.finished > 0 ? round(totals.errors / totals.finished) : 0,
    tool_call_depth: toolCallDepth,
    job_duration_s: round(ageMs / 1000),
    baseline_ratio: baselinePerMinute > 0 ? round(spendPerMinute / baselinePerMinute) : 0,
  };
}

const round = (n: number): number => Math.round(n * 1e6) / 1e6;

export function countRepeats(
  prompts: readonly PromptMark[],
  fingerprint: string,
  since: number,
  maxBits: number,
): number {
  let count = 0;
  for (const p of prompts) if (p.at >= since && similar(p.fingerprint, fingerprint, maxBits)) count++;
  return count;
}

// ---------------------------------------------------------------------------------------------
// Prompt fingerprints: an exact hash of the normalized text (case, whitespace, punctuation and the
// value of numbers ignored, so "attempt 3" and "Attempt 4!" are the same) plus a 64-bit SimHash over
// word pairs for near-identical prompts. 24 hex characters: 8 exact, 16 SimHash.

const MAX_CHARS = 8192;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function mix(h: number): number {
  let x = h;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

/** Counters reused across calls (the gateway is single-threaded and this never awaits). */
const votes = new Int32Array(64);

export function promptFingerprint(input: string): string {
  const text =
    input.length > MAX_CHARS ? `${input.slice(0, MAX_CHARS / 2)} ${input.slice(-MAX_CHARS / 2)}` : input;
  votes.fill(0);
  let exact = FNV_OFFSET;
  let word = FNV_OFFSET;
  let inWord = false;
  let inNumber = false;
  let previous = -1;
  let shingles = 0;
  const addWord = (w: number): void => {
    exact = Math.imul(exact ^ w, FNV_PRIME) >>> 0;
    if (previous !== -1) {
      vote(mix(previous ^ Math.imul(w, 0x9e3779b1)), mix(Math.imul(previous, 0x85ebca6b) ^ w ^ 0x5bd1e995));
      shingles++;
    }
    previous = w;
  };
  for (let i = 0; i <= text.length; i++) {
    let c = i < text.length ? text.charCodeAt(i) : 32;
    const digit = c >= 48 && c <= 57;
    if (c >= 65 && c <= 90) c += 32;
    const letter = (c >= 97 && c <= 122) || c > 127;
    if (letter || digit) {
      if (!inWord) {
        word = FNV_OFFSET;
        inWord = true;
      }
      // A run of digits hashes as one "0": counters and ids do not make a prompt new.
      if (digit) {
        if (!inNumber) word = Math.imul(word ^ 48, FNV_PRIME);
        inNumber = true;
      } else {
        word = Math.imul(word ^ c, FNV_PRIME);
        inNumber = false;
      }
    } else if (inWord) {
      addWord(word >>> 0);
      inWord = false;
      inNumber = false;
    }
  }
  if (shingles === 0 && previous !== -1) vote(mix(previous), mix(previous ^ 0x5bd1e995));
  let high = 0;
  let low = 0;
  for (let b = 0; b < 32; b++) {
    if ((votes[b] ?? 0) > 0) high |= 1 << b;
    if ((votes[b + 32] ?? 0) > 0) low |= 1 << b;
  }
  return `${hex8(exact)}${hex8(high)}${hex8(low)}`;
}

function vote(a: number, b: number): void {
  for (let bit = 0; bit < 32; bit++) {
    votes[bit] = (votes[bit] ?? 0) + ((a >>> bit) & 1 ? 1 : -1);
    votes[bit + 32] = (votes[bit + 32] ?? 0) + ((b >>> bit) & 1 ? 1 : -1);
  }
}

function popcount(n: number): number {
  let x = n - ((n >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Same normalized text, or SimHashes within `maxBits` bits of each other. */
export function similar(a: string, b: string, maxBits: number): boolean {
  if (a.length !== 24 || b.length !== 24) return false;
  if (a.slice(0, 8) === b.slice(0, 8)) return true;
  if (maxBits <= 0) return false;
  const distance =
    popcount(Number.parseInt(a.slice(8, 16), 16) ^ Number.parseInt(b.slice(8, 16), 16)) +
    popcount(Number.parseInt(a.slice(16), 16) ^ Number.parseInt(b.slice(16), 16));
  return distance <= maxBits;
}

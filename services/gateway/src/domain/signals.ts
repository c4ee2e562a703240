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
  readonly similarity: number;
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
    similarity: config.similarity,
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
        : countRepeats(totals.prompts, fingerprint, now - windows.repeatWindowMs, windows.similarity),
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
  threshold: number,
): number {
  let count = 0;
  for (const p of prompts) if (p.at >= since && similar(p.fingerprint, fingerprint, threshold)) count++;
  return count;
}

// ---------------------------------------------------------------------------------------------
// Prompt fingerprints: an exact hash of the normalized text (case, whitespace, punctuation and the
// value of numbers ignored, so "attempt 3" and "Attempt 4!" are the same) plus a bottom-k MinHash of
// its word pairs (the 16 smallest pair hashes). Two sketches estimate the Jaccard similarity of the
// prompts' word pairs; for a prompt of at most 16 distinct pairs the sketch holds them all and the
// similarity is exact. 8 hex characters exact, then 16 values of 8; texts of fewer than 8 word pairs
// get no sketch (exact matches only: "weather in paris" and "weather in london" are different
// questions).

const MAX_CHARS = 4096;
const K = 16;
const MIN_PAIRS = 8;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const EMPTY = 0xffffffff;
const NO_SKETCH = '-'.repeat(K * 8);

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

/** The k smallest distinct pair hashes, ascending (reused: single-threaded, never awaits). */
const bottom = new Uint32Array(K);

function keep(value: number, count: number): number {
  // Insert into the ascending array if smaller than its largest (or not full), skipping duplicates.
  if (count === K && value >= bottom[K - 1]!) return count;
  let at = count === K ? K - 1 : count;
  while (at > 0 && bottom[at - 1]! > value) at--;
  if (at > 0 && bottom[at - 1] === value) return count;
  if (at < count && bottom[at] === value) return count;
  const end = count === K ? K - 1 : count;
  bottom.copyWithin(at + 1, at, end);
  bottom[at] = value;
  return count === K ? K : count + 1;
}

export function promptFingerprint(input: string): string {
  const text =
    input.length > MAX_CHARS ? `${input.slice(0, MAX_CHARS / 2)} ${input.slice(-MAX_CHARS / 2)}` : input;
  let exact = FNV_OFFSET;
  let word = FNV_OFFSET;
  let inWord = false;
  let inNumber = false;
  let previous = -1;
  let pairs = 0;
  let count = 0;
  for (let i = 0; i <= text.length; i++) {
    let c = i < text.length ? text.charCodeAt(i) : 32;
    const digit = c >= 48 && c <= 57;
    if (c >= 65 && c <= 90) c += 32;
    if ((c >= 97 && c <= 122) || c > 127 || digit) {
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
      continue;
    }
    if (!inWord) continue;
    inWord = false;
    inNumber = false;
    const w = word >>> 0;
    exact = Math.imul(exact ^ w, FNV_PRIME) >>> 0;
    if (previous !== -1) {
      count = keep(mix(previous ^ Math.imul(w, 0x9e3779b1)), count);
      pairs++;
    }
    previous = w;
  }
  if (pairs < MIN_PAIRS) return `${hex8(exact)}${NO_SKETCH}`;
  let out = hex8(exact);
  for (let k = 0; k < K; k++) out += k < count ? hex8(bottom[k]!) : hex8(EMPTY);
  return out;
}

const FINGERPRINT_LENGTH = 8 + K * 8;

function sketchOf(f: string): number[] {
  const values: number[] = [];
  for (let k = 0; k < K; k++) {
    const v = Number.parseInt(f.slice(8 + k * 8, 16 + k * 8), 16);
    if (v !== EMPTY) values.push(v);
  }
  return values;
}

/**
 * Same normalized text, or (both long enough) an estimated Jaccard similarity of word pairs of at
 * least `threshold` (1 means exact matches only).
 */
export function similar(a: string, b: string, threshold: number): boolean {
  if (a.length !== FINGERPRINT_LENGTH || b.length !== FINGERPRINT_LENGTH) return false;
  if (a.startsWith(b.slice(0, 8))) return true;
  if (threshold >= 1 || a.endsWith(NO_SKETCH) || b.endsWith(NO_SKETCH)) return false;
  // Bottom-k of the union: the k smallest values of both sketches; those in both are shared pairs.
  const x = sketchOf(a);
  const y = sketchOf(b);
  let i = 0;
  let j = 0;
  let taken = 0;
  let shared = 0;
  while (taken < K && (i < x.length || j < y.length)) {
    const xi = i < x.length ? x[i]! : Number.POSITIVE_INFINITY;
    const yj = j < y.length ? y[j]! : Number.POSITIVE_INFINITY;
    if (xi === yj) {
      shared++;
      i++;
      j++;
    } else if (xi < yj) i++;
    else j++;
    taken++;
  }
  return taken > 0 && shared / taken >= threshold;
}

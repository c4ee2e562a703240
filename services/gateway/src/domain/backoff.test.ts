import { describe, expect, it } from 'vitest';
import { retryDelayMs } from './backoff.js';

const options = { baseMs: 100, maxMs: 5_000 };
const almostOne = () => 0.999_999;

describe('retry backoff', () => {
  it('when random is at its extremes, then the delay stays within [0, base·2^(attempt-1))', () => {
    for (let attempt = 1; attempt <= 6; attempt++) {
      const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** (attempt - 1));
      expect(retryDelayMs(attempt, options, undefined, () => 0)).toBe(0);
      const top = retryDelayMs(attempt, options, undefined, almostOne);
      expect(top).toBeLessThan(ceiling);
      expect(top).toBeGreaterThanOrEqual(ceiling - 1);
    }
  });

  it('when attempts grow, then the ceiling doubles each time', () => {
    expect(retryDelayMs(1, options, undefined, almostOne)).toBe(99);
    expect(retryDelayMs(2, options, undefined, almostOne)).toBe(199);
    expect(retryDelayMs(3, options, undefined, almostOne)).toBe(399);
  });

  it('when many attempts have failed, then the delay is capped at maxMs', () => {
    for (const attempt of [7, 10, 30, 100]) {
      const delay = retryDelayMs(attempt, options, undefined, almostOne);
      expect(delay).toBeLessThanOrEqual(options.maxMs);
      expect(delay).toBeGreaterThan(options.maxMs - 2);
    }
  });

  it('when the jitter is random, then delays are spread over the range and never negative', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const delays = Array.from({ length: 500 }, () => retryDelayMs(4, options, undefined, random));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(800);
    expect(new Set(delays).size).toBeGreaterThan(100);
    expect(delays.every(Number.isInteger)).toBe(true);
  });

  it('when the provider sent retry-after, then the delay is never shorter than it', () => {
    expect(retryDelayMs(1, options, 1_500, () => 0)).toBe(1_500);
    expect(retryDelayMs(1, options, 1_500, almostOne)).toBe(1_500);
    expect(retryDelayMs(3, options, 0, almostOne)).toBe(399);
  });

  it('when the jitter is longer than retry-after, then the longer one wins', () => {
    expect(retryDelayMs(6, options, 100, almostOne)).toBe(3_199);
  });

  it('when retry-after is larger than the cap, then it is capped so one hint cannot stall a request', () => {
    expect(retryDelayMs(1, options, 60_000, () => 0)).toBe(options.maxMs);
    expect(retryDelayMs(1, { baseMs: 100, maxMs: 250 }, 1_000, almostOne)).toBe(250);
  });
});

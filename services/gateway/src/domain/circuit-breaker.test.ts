import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './circuit-breaker.js';

const options = { failureThreshold: 3, cooldownMs: 1_000 };

function openedAt(now: number): CircuitBreaker {
  const breaker = new CircuitBreaker(options);
  for (let i = 0; i < options.failureThreshold; i++) breaker.onFailure(now);
  return breaker;
}

describe('circuit breaker', () => {
  it('when fewer failures than the threshold happen, then it stays closed and lets requests through', () => {
    const breaker = new CircuitBreaker(options);
    breaker.onFailure(0);
    breaker.onFailure(0);
    expect(breaker.current).toBe('closed');
    expect(breaker.isAvailable(0)).toBe(true);
    expect(breaker.tryAcquire(0)).toBe(true);
    expect(breaker.tryAcquire(0)).toBe(true);
  });

  it('when the threshold of consecutive failures is reached, then it opens', () => {
    const breaker = openedAt(100);
    expect(breaker.current).toBe('open');
    expect(breaker.isAvailable(100)).toBe(false);
    expect(breaker.tryAcquire(100)).toBe(false);
  });

  it('when a success interrupts the failures, then the count starts again (only consecutive failures open it)', () => {
    const breaker = new CircuitBreaker(options);
    breaker.onFailure(0);
    breaker.onFailure(0);
    breaker.onSuccess();
    breaker.onFailure(0);
    breaker.onFailure(0);
    expect(breaker.current).toBe('closed');
    breaker.onFailure(0);
    expect(breaker.current).toBe('open');
  });

  it('when it is open, then every request is refused until the cooldown has passed', () => {
    const breaker = openedAt(1_000);
    for (const now of [1_000, 1_500, 1_999]) {
      expect(breaker.isAvailable(now)).toBe(false);
      expect(breaker.tryAcquire(now)).toBe(false);
    }
    expect(breaker.current).toBe('open');
    expect(breaker.isAvailable(2_000)).toBe(true);
  });

  it('when the cooldown has passed, then exactly one probe is let through (half-open)', () => {
    const breaker = openedAt(0);
    expect(breaker.tryAcquire(1_000)).toBe(true);
    expect(breaker.current).toBe('half_open');
    expect(breaker.isAvailable(1_000)).toBe(false);
    expect(breaker.tryAcquire(1_001)).toBe(false);
    expect(breaker.tryAcquire(5_000)).toBe(false);
  });

  it('when isAvailable is asked, then it claims nothing: the probe is still there for tryAcquire', () => {
    const breaker = openedAt(0);
    expect(breaker.isAvailable(1_000)).toBe(true);
    expect(breaker.isAvailable(1_000)).toBe(true);
    expect(breaker.tryAcquire(1_000)).toBe(true);
    expect(breaker.tryAcquire(1_000)).toBe(false);
  });

  it('when the probe succeeds, then it closes and lets every request through again', () => {
    const breaker = openedAt(0);
    expect(breaker.tryAcquire(1_000)).toBe(true);
    breaker.onSuccess();
    expect(breaker.current).toBe('closed');
    expect(breaker.tryAcquire(1_000)).toBe(true);
    expect(breaker.tryAcquire(1_000)).toBe(true);
    // A fresh run of failures is needed to open it again.
    breaker.onFailure(1_000);
    breaker.onFailure(1_000);
    expect(breaker.current).toBe('closed');
  });

  it('when the probe fails, then it reopens at once for a whole new cooldown', () => {
    const breaker = openedAt(0);
    expect(breaker.tryAcquire(1_000)).toBe(true);
    breaker.onFailure(1_200);
    expect(breaker.current).toBe('open');
    expect(breaker.tryAcquire(1_300)).toBe(false);
    expect(breaker.isAvailable(2_199)).toBe(false);
    expect(breaker.tryAcquire(2_200)).toBe(true);
    expect(breaker.current).toBe('half_open');
  });

  it('when the threshold is 1, then a single failure opens it', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10 });
    breaker.onFailure(0);
    expect(breaker.current).toBe('open');
    expect(breaker.tryAcquire(5)).toBe(false);
    expect(breaker.tryAcquire(10)).toBe(true);
  });
});

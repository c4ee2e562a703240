import { describe, expect, it } from 'vitest';
import { AuthFailureWindows, type FailedAttempt, type FailureSummary } from './auth-failure-windows.js';

const attempt = (fingerprint: string, source: string, at: number, detail = `${fingerprint}@${at}`) =>
  ({ fingerprint, source, at, detail }) satisfies FailedAttempt<string>;

/** Everything recorded, as (at once | summary) lines, for `attempts` then the close at `end`. */
function replay(windows: AuthFailureWindows<string>, attempts: FailedAttempt<string>[], end: number) {
  const recorded: Array<{ now: string } | FailureSummary<string>> = [];
  for (const a of attempts) {
    const verdict = windows.observe(a);
    recorded.push(...verdict.closed);
    if (verdict.record) recorded.push({ now: a.detail });
  }
  recorded.push(...windows.closeDue(end));
  return recorded;
}

/** Attempts a recording stands for: 1 for one recorded at once, `count` for a summary. */
const attemptsIn = (recorded: ReturnType<typeof replay>) =>
  recorded.reduce((n, r) => n + ('now' in r ? 1 : r.count), 0);

describe('AuthFailureWindows', () => {
  it('when one key fails over and over from one address, then the first is recorded at once and the rest as one summary with the count', () => {
    const windows = new AuthFailureWindows<string>(1_000);
    const attempts = Array.from({ length: 50 }, (_, i) => attempt('bad', '10.0.0.1', i * 10));
    const recorded = replay(windows, attempts, 1_000);
    expect(recorded).toEqual([
      { now: 'bad@0' },
      { scope: 'key', detail: 'bad@490', count: 49, firstAt: 10, lastAt: 490, distinctKeys: 1 },
    ]);
    expect(attemptsIn(recorded)).toBe(50);
    expect(windows.openCount).toBe(0);
  });

  it('when the window has not ended, then nothing is summarised yet; at its end exactly once', () => {
    const windows = new AuthFailureWindows<string>(1_000);
    windows.observe(attempt('bad', 'a', 0));
    windows.observe(attempt('bad', 'a', 100));
    expect(windows.closeDue(999)).toEqual([]);
    expect(windows.closeDue(1_000)).toHaveLength(1);
    expect(windows.closeDue(5_000)).toEqual([]);
  });

  it('when a key fails once only, then its window closes with no summary', () => {
    const windows = new AuthFailureWindows<string>(1_000);
    expect(replay(windows, [attempt('typo', 'a', 0)], 2_000)).toEqual([{ now: 'typo@0' }]);
  });

  it('when the same key fails after its window closed, then the old window is summarised first and the new attempt recorded at once', () => {
    const windows = new AuthFailureWindows<string>(1_000);
    windows.observe(attempt('bad', 'a', 0));
    windows.observe(attempt('bad', 'a', 500));
    const later = windows.observe(attempt('bad', 'a', 1_200));
    expect(later.record).toBe(true);
    expect(later.closed).toEqual([expect.objectContaining({ count: 1, lastAt: 500 })]);
  });

  it('when keys or addresses differ, then each pair has a window of its own', () => {
    const windows = new AuthFailureWindows<string>(1_000);
    const recorded = replay(
      windows,
      [
        attempt('k1', 'a', 0),
        attempt('k2', 'a', 1),
        attempt('k1', 'b', 2),
        attempt('', 'a', 3),
        attempt('k1', 'a', 4),
        attempt('k1', 'b', 5),
      ],
      1_100,
    );
    expect(recorded.filter((r) => 'now' in r)).toHaveLength(4);
    expect(recorded.filter((r) => !('now' in r))).toEqual([
      expect.objectContaining({ detail: 'k1@4', count: 1 }),
      expect.objectContaining({ detail: 'k1@5', count: 1 }),
    ]);
  });

  it('when one address tries a new key every time, then past the per-address cap its keys share one window, and every attempt is still counted', () => {
    const windows = new AuthFailureWindows<string>(1_000, 3);
    const attempts = Array.from({ length: 100 }, (_, i) => attempt(`random-${i}`, 'attacker', i));
    const recorded = replay(windows, attempts, 2_000);
    // Three keys at once, then the address-wide window: its first at once, the other 96 summarised.
    expect(recorded.filter((r) => 'now' in r)).toHaveLength(4);
    expect(recorded.filter((r) => !('now' in r))).toEqual([
      { scope: 'source', detail: 'random-99@99', count: 96, firstAt: 4, lastAt: 99, distinctKeys: 96 },
    ]);
    expect(attemptsIn(recorded)).toBe(100);
    expect(windows.observe(attempt('another', 'someone-else', 2_001)).scope).toBe('key');
  });

  it('when too many windows are open, then new attempts share one last window and memory stays bounded', () => {
    const windows = new AuthFailureWindows<string>(1_000, 20, 10);
    const attempts = Array.from({ length: 1_000 }, (_, i) => attempt('k', `10.0.${i}`, i % 500));
    const recorded = replay(windows, attempts, 500);
    expect(windows.openCount).toBeLessThanOrEqual(11);
    expect(attemptsIn([...recorded, ...windows.closeAll()])).toBe(1_000);
  });

  it('when the process stops, then closeAll reports what open windows counted', () => {
    const windows = new AuthFailureWindows<string>(60_000);
    windows.observe(attempt('bad', 'a', 0));
    windows.observe(attempt('bad', 'a', 1));
    windows.observe(attempt('other', 'a', 2));
    expect(windows.closeAll()).toEqual([expect.objectContaining({ count: 1, detail: 'bad@1' })]);
    expect(windows.openCount).toBe(0);
  });

  it('when the window is not positive, then it refuses to start', () => {
    expect(() => new AuthFailureWindows<string>(0)).toThrow(/positive/);
  });
});

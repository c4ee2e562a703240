import { describe, expect, it } from 'vitest';
import { SilenceDetector } from '../src/run/silence.js';

describe('silence', () => {
  it('when the job stays quiet for the period, then it is reported once per quiet spell', () => {
    const d = new SilenceDetector(1_000, 0);
    expect(d.check(999)).toBeUndefined();
    expect(d.check(1_000)).toEqual({ silentForMs: 1_000, silenceMs: 1_000 });
    expect(d.check(5_000)).toBeUndefined();
  });

  it('when the job shows activity, then the clock restarts and a new spell is reported again', () => {
    const d = new SilenceDetector(1_000, 0);
    d.activity(800);
    expect(d.check(1_500)).toBeUndefined();
    expect(d.check(1_800)?.silentForMs).toBe(1_000);
    d.activity(2_000);
    expect(d.check(2_500)).toBeUndefined();
    expect(d.check(3_100)?.silentForMs).toBe(1_100);
  });

  it('when activity is reported out of order, then the latest time wins', () => {
    const d = new SilenceDetector(1_000, 0);
    d.activity(900);
    d.activity(100);
    expect(d.check(1_500)).toBeUndefined();
  });

  it('when the period is not positive, then it is refused', () => {
    expect(() => new SilenceDetector(0, 0)).toThrow(/positive/);
  });
});

import { describe, expect, it } from 'vitest';
import { normalizeLine, RepeatedOutputDetector } from '../src/run/repeated-output.js';

describe('repeated output', () => {
  it('when lines differ only in numbers, colours, case and spacing, then they count as the same line', () => {
    expect(normalizeLine('\x1b[31mRetry 3/10 in 200ms\x1b[0m  ')).toBe(
      normalizeLine('retry   4/10 in 1,500ms'),
    );
    expect(normalizeLine('retry 3')).not.toBe(normalizeLine('giving up 3'));
  });

  it('when a line reaches the threshold within the window, then it is reported once with its count', () => {
    const d = new RepeatedOutputDetector({ threshold: 3, windowLines: 10 });
    expect(d.push('polling job 1')).toBeUndefined();
    expect(d.push('other')).toBeUndefined();
    expect(d.push('polling job 2')).toBeUndefined();
    expect(d.push('polling job 3')).toEqual({
      line: 'polling job 3',
      count: 3,
      threshold: 3,
      windowLines: 10,
    });
    for (let i = 0; i < 5; i++) expect(d.push(`polling job ${i}`)).toBeUndefined();
  });

  it('when repeats are spread wider than the window, then nothing is reported', () => {
    const d = new RepeatedOutputDetector({ threshold: 3, windowLines: 4 });
    const found = [];
    for (let i = 0; i < 20; i++) {
      found.push(d.push('tick'), d.push(`a${'x'.repeat(i)}`), d.push(`b${'y'.repeat(i)}`));
    }
    expect(found.filter(Boolean)).toEqual([]);
  });

  it('when a reported line leaves the window and comes back, then it is reported again', () => {
    const d = new RepeatedOutputDetector({ threshold: 2, windowLines: 3 });
    expect(d.push('same')).toBeUndefined();
    expect(d.push('same')?.count).toBe(2);
    for (const l of ['a', 'bb', 'ccc']) d.push(l);
    expect(d.push('same')).toBeUndefined();
    expect(d.push('same')?.count).toBe(2);
  });

  it('when lines are blank or only numbers, then they never count', () => {
    const d = new RepeatedOutputDetector({ threshold: 2, windowLines: 5 });
    expect([d.push(''), d.push('   '), d.push('42'), d.push('43'), d.push('')].filter(Boolean)).toEqual([]);
  });

  it('when the settings cannot work, then the detector refuses them', () => {
    expect(() => new RepeatedOutputDetector({ threshold: 1, windowLines: 5 })).toThrow(/at least 2/);
    expect(() => new RepeatedOutputDetector({ threshold: 6, windowLines: 5 })).toThrow(/window/);
  });
});

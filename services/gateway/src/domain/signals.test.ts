import { describe, expect, it } from 'vitest';
import {
  computeSignals,
  countRepeats,
  promptFingerprint,
  signalWindows,
  similar,
  type WindowTotals,
} from './signals.js';
import { thresholdsOf } from './thresholds.js';

const windows = signalWindows({
  windowSeconds: 60,
  repeatWindowSeconds: 300,
  maxPrompts: 32,
  similarity: 0.75,
  idleSeconds: 3600,
});

const TASK =
  'Please read the file src/main.ts and fix the failing test in the parser module, then run the whole test suite again and report the result back to me with a short summary of what changed and why it failed before';

describe('prompt fingerprints', () => {
  it('when prompts differ only in case, punctuation, spacing or numbers, then they are the same prompt', () => {
    const a = promptFingerprint('Attempt 3: retry the build');
    const b = promptFingerprint('attempt   17 -- Retry the BUILD!');
    expect(similar(a, b, 1)).toBe(true);
  });

  it('when a long prompt changes a word or two, then it is near-identical; an unrelated one is not', () => {
    const base = promptFingerprint(TASK);
    expect(similar(base, promptFingerprint(TASK.replace('short', 'brief')), 0.75)).toBe(true);
    expect(similar(base, promptFingerprint(`${TASK} thanks`), 0.75)).toBe(true);
    expect(similar(base, promptFingerprint(TASK.replace('short', 'brief')), 1)).toBe(false);
    expect(
      similar(base, promptFingerprint('Write a haiku about autumn leaves in a quiet park at dusk'), 0.75),
    ).toBe(false);
  });

  it('when prompts share a template but ask different things, then they are not near-identical', () => {
    const tpl = (x: string) =>
      `You are a helpful assistant. Translate the following customer message to French and keep the tone polite and concise: ${x}`;
    const a = promptFingerprint(tpl('my order arrived late and the box was damaged, can I get a refund'));
    const b = promptFingerprint(
      tpl('I would like to change the delivery address for my next subscription box'),
    );
    expect(similar(a, b, 0.75)).toBe(false);
  });

  it('when prompts are short, then only exact repeats count', () => {
    const paris = promptFingerprint('what is the weather in paris');
    expect(similar(paris, promptFingerprint('what is the weather in london'), 0.5)).toBe(false);
    expect(similar(paris, promptFingerprint('What is the weather in Paris?'), 0.5)).toBe(true);
  });

  it('when a prompt is huge, then it is fingerprinted from its head and tail in bounded time', () => {
    const huge = `${'lorem ipsum dolor sit amet '.repeat(50_000)}end`;
    const started = performance.now();
    const f = promptFingerprint(huge);
    expect(performance.now() - started).toBeLessThan(200);
    expect(f).toHaveLength(136);
  });
});

describe('signals from window totals', () => {
  const totals = (over: Partial<WindowTotals>): WindowTotals => ({
    requests: 0,
    finished: 0,
    errors: 0,
    costMicros: 0,
    tokens: 0,
    firstSeenAt: 0,
    totalCostMicros: 0,
    prompts: [],
    ...over,
  });

  it('when a subject spent and sent in the window, then rates are per minute and the error rate is a fraction', () => {
    const s = computeSignals(
      totals({ requests: 30, finished: 20, errors: 5, costMicros: 1_500_000, tokens: 9000, firstSeenAt: 0 }),
      windows,
      45_000,
      undefined,
      2,
    );
    expect(s).toMatchObject({
      requests_per_minute: 30,
      spend_per_minute: 1.5,
      tokens_per_minute: 9000,
      error_rate: 0.25,
      tool_call_depth: 2,
      job_duration_s: 45,
      repeated_prompts: 0,
      baseline_ratio: 0,
    });
  });

  it('when a job that spent steadily spikes, then baseline_ratio compares the window with its own past', () => {
    // 10 minutes at $0.10/min, then $1.00 in the last minute.
    const s = computeSignals(
      totals({ costMicros: 1_000_000, totalCostMicros: 2_000_000, firstSeenAt: 0 }),
      windows,
      11 * 60_000,
      undefined,
      0,
    );
    expect(s.baseline_ratio).toBeCloseTo(10, 5);
    // Too young for a baseline: never "above" it.
    const young = computeSignals(
      totals({ costMicros: 900_000, totalCostMicros: 1_000_000 }),
      windows,
      90_000,
      undefined,
      0,
    );
    expect(young.baseline_ratio).toBe(0);
  });

  it('when earlier prompts repeat within the repeat window, then each counts once; older ones do not', () => {
    const f = promptFingerprint(TASK);
    const other = promptFingerprint(
      'Summarize the quarterly report for the finance team in three bullet points',
    );
    const prompts = [
      { at: 290_000, fingerprint: f },
      { at: 280_000, fingerprint: other },
      { at: 200_000, fingerprint: promptFingerprint(TASK.replace('short', 'brief')) },
      { at: 1_000, fingerprint: f },
    ];
    expect(countRepeats(prompts, f, 300_000 - windows.repeatWindowMs + 1_000, windows.similarity)).toBe(3);
    expect(countRepeats(prompts, f, 100_000, windows.similarity)).toBe(2);
  });
});

describe('thresholds of a condition', () => {
  it('when a condition compares signals with literals, then each comparison is reported either way round', () => {
    expect(thresholdsOf('signals.repeated_prompts >= 5 && 2.5 < signals.spend_per_minute')).toEqual([
      { path: 'signals.repeated_prompts', operator: '>=', value: 5 },
      { path: 'signals.spend_per_minute', operator: '>', value: 2.5 },
    ]);
    expect(thresholdsOf('request.job == "x"')).toEqual([]);
  });
});

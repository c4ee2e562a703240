import { describe, expect, it } from 'vitest';
import { costOf, DEFAULT_PRICES, findPrice, type Price } from './prices.js';

const usage = (inputTokens: number, outputTokens: number, cachedInputTokens = 0) => ({
  inputTokens,
  outputTokens,
  cachedInputTokens,
});

describe('price lookup', () => {
  it('when the model is listed, then its exact price is used', () => {
    expect(findPrice('gpt-4o', DEFAULT_PRICES)).toEqual({ input: 2.5, output: 10, cachedInput: 1.25 });
    expect(findPrice('gpt-4o-mini', DEFAULT_PRICES)).toEqual({
      input: 0.15,
      output: 0.6,
      cachedInput: 0.075,
    });
  });

  it('when a dated model name is asked, then the longest listed prefix wins', () => {
    expect(findPrice('gpt-4o-mini-2024-07-18', DEFAULT_PRICES)).toBe(DEFAULT_PRICES['gpt-4o-mini']);
    expect(findPrice('gpt-4o-2024-08-06', DEFAULT_PRICES)).toBe(DEFAULT_PRICES['gpt-4o']);
    expect(findPrice('gpt-4.1-nano-2025-04-14', DEFAULT_PRICES)).toBe(DEFAULT_PRICES['gpt-4.1-nano']);
    expect(findPrice('claude-sonnet-4-20250514', DEFAULT_PRICES)).toBe(DEFAULT_PRICES['claude-sonnet-4']);
  });

  it('when the table is ordered shortest first, then the longest prefix still wins', () => {
    const table: Record<string, Price> = {
      m: { input: 1, output: 1 },
      'm-large': { input: 3, output: 3 },
      'm-large-v2': { input: 5, output: 5 },
    };
    expect(findPrice('m-large-v2-2025', table)?.input).toBe(5);
    expect(findPrice('m-large-2025', table)?.input).toBe(3);
    expect(findPrice('m-small', table)?.input).toBe(1);
  });

  it('when no listed name is a prefix, then there is no price', () => {
    expect(findPrice('some-new-model', DEFAULT_PRICES)).toBeUndefined();
    expect(findPrice('4o', DEFAULT_PRICES)).toBeUndefined();
  });

  it('when a model is named like a built-in object property, then there is no price (not the prototype)', () => {
    for (const model of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      expect(findPrice(model, DEFAULT_PRICES), model).toBeUndefined();
      expect(costOf(usage(1_000, 1_000), findPrice(model, DEFAULT_PRICES)), model).toBe(0);
    }
  });

  it('when an override table is merged over the defaults, then the override wins', () => {
    const table = { ...DEFAULT_PRICES, 'gpt-4o': { input: 1, output: 2 } };
    expect(findPrice('gpt-4o-2024-08-06', table)).toEqual({ input: 1, output: 2 });
  });
});

describe('cost', () => {
  it('when tokens are priced, then cost is tokens × USD per million', () => {
    expect(costOf(usage(1_000_000, 0), { input: 2.5, output: 10 })).toBeCloseTo(2.5, 10);
    expect(costOf(usage(1_000, 500), { input: 2.5, output: 10 })).toBeCloseTo(0.0025 + 0.005, 12);
  });

  it('when part of the input was cached, then those tokens are billed at the cached rate', () => {
    const cost = costOf(usage(1_000, 100, 400), DEFAULT_PRICES['gpt-4o']);
    // 600 fresh × 2.5 + 400 cached × 1.25 + 100 out × 10, per million
    expect(cost).toBeCloseTo((600 * 2.5 + 400 * 1.25 + 100 * 10) / 1e6, 12);
  });

  it('when Anthropic reports cache writes, then they cost the cache-write rate and reads the cached rate', () => {
    const price = DEFAULT_PRICES['claude-sonnet-4'];
    // 1,000 input: 600 read from the cache, 300 written to it, 100 plain.
    const cost = costOf({ ...usage(1_000, 50, 600), cacheWriteTokens: 300 }, price);
    expect(cost).toBeCloseTo((100 * 3 + 600 * 0.3 + 300 * 3.75 + 50 * 15) / 1e6, 12);
    expect(cost).toBeGreaterThan(costOf(usage(1_000, 50, 600), price));
  });

  it('when part of the cache writes are for one hour, then those cost the one-hour rate', () => {
    const price = DEFAULT_PRICES['claude-sonnet-4'];
    const cost = costOf({ ...usage(1_000, 0), cacheWriteTokens: 800, cacheWrite1hTokens: 500 }, price);
    // 200 plain × $3, 300 five-minute writes × $3.75, 500 one-hour writes × $6
    expect(cost).toBeCloseTo((200 * 3 + 300 * 3.75 + 500 * 6) / 1e6, 12);
    // Without a one-hour rate they cost the five-minute one.
    const flat = { input: 3, output: 15, cacheWriteInput: 3.75 };
    expect(costOf({ ...usage(1_000, 0), cacheWriteTokens: 800, cacheWrite1hTokens: 500 }, flat)).toBeCloseTo(
      (200 * 3 + 800 * 3.75) / 1e6,
      12,
    );
  });

  it('when the model lists no cache-write rate, then writes cost the input rate', () => {
    const price = { input: 2, output: 4 };
    expect(costOf({ ...usage(1_000, 0), cacheWriteTokens: 400 }, price)).toBeCloseTo(
      costOf(usage(1_000, 0), price),
      12,
    );
  });

  it('when reported cache reads and writes exceed the input, then nothing is billed twice or negative', () => {
    const price = { input: 10, output: 0, cachedInput: 1, cacheWriteInput: 20 };
    expect(costOf({ ...usage(100, 0, 80), cacheWriteTokens: 80 }, price)).toBeCloseTo(
      (80 * 1 + 20 * 20) / 1e6,
      12,
    );
  });

  it('when the model lists no cached rate, then cached tokens cost the input rate', () => {
    const price = { input: 3, output: 6 };
    expect(costOf(usage(1_000, 0, 400), price)).toBeCloseTo(costOf(usage(1_000, 0, 0), price), 12);
  });

  it('when the reported cached tokens exceed the input tokens, then no negative fresh tokens are billed', () => {
    const cost = costOf(usage(100, 0, 500), { input: 10, output: 0, cachedInput: 1 });
    expect(cost).toBeCloseTo((100 * 1) / 1e6, 12);
    expect(cost).toBeGreaterThan(0);
  });

  it('when the model has no price, then the cost is 0', () => {
    expect(costOf(usage(10_000, 10_000, 10), undefined)).toBe(0);
    expect(costOf(usage(10_000, 10_000), findPrice('unknown-model', DEFAULT_PRICES))).toBe(0);
  });

  it('when the local model answered, then it is free', () => {
    expect(costOf(usage(123, 456), findPrice('flowloom-local', DEFAULT_PRICES))).toBe(0);
  });
});

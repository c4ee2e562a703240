import type { ChatRequest } from '@flowloom/providers';
import { describe, expect, it } from 'vitest';
import { cacheWritesOf, reservationPrice, worstCaseMicros } from './budget.js';
import { costOf, DEFAULT_PRICES, type Price } from './prices.js';

const plain: ChatRequest = {
  model: 'claude',
  stream: false,
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: [{ type: 'text', text: 'Hello' }] },
  ],
};

const FIVE_MINUTES = { type: 'ephemeral' } as const;
const ONE_HOUR = { type: 'ephemeral', ttl: '1h' } as const;

describe('cache writes a request may cause', () => {
  it('when no block carries a breakpoint, then none', () => {
    expect(cacheWritesOf(plain)).toBe('none');
  });

  it('when a breakpoint sits on a system prompt, a content part, a tool, a tool call, a tool result or the request, then it is seen', () => {
    const variants: ChatRequest[] = [
      { ...plain, cacheControl: FIVE_MINUTES },
      { ...plain, messages: [{ role: 'system', content: 'rules', cacheControl: FIVE_MINUTES }] },
      {
        ...plain,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'doc', cacheControl: FIVE_MINUTES }] }],
      },
      { ...plain, tools: [{ name: 't', parameters: {}, cacheControl: FIVE_MINUTES }] },
      {
        ...plain,
        messages: [
          {
            role: 'assistant',
            content: null,
            toolCalls: [{ id: 'c1', name: 't', arguments: '{}', cacheControl: FIVE_MINUTES }],
          },
          { role: 'tool', toolCallId: 'c1', content: 'result', cacheControl: FIVE_MINUTES },
        ],
      },
    ];
    for (const request of variants) expect(cacheWritesOf(request)).toBe('5m');
  });

  it('when any breakpoint asks for an hour, then one-hour writes, wherever it comes', () => {
    const request: ChatRequest = {
      ...plain,
      tools: [{ name: 't', parameters: {}, cacheControl: ONE_HOUR }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'doc', cacheControl: FIVE_MINUTES }] }],
    };
    expect(cacheWritesOf(request)).toBe('1h');
  });
});

describe('the worst case reserved for a request with cache breakpoints', () => {
  const claude = DEFAULT_PRICES['claude-sonnet-4'] as Price;
  const input = 10_000;
  const maxOutput = 500;
  const micros = (usd: number) => Math.round(usd * 1_000_000);

  it('when every input token is written to the cache for an hour, then the reservation still covers the bill', () => {
    const bill = costOf(
      {
        inputTokens: input,
        outputTokens: maxOutput,
        cachedInputTokens: 0,
        cacheWriteTokens: input,
        cacheWrite1hTokens: input,
      },
      claude,
    );
    // Input priced at the plain rate (what was reserved before) falls short of a one-hour write.
    expect(worstCaseMicros(input, maxOutput, [claude])).toBeLessThan(micros(bill));
    expect(worstCaseMicros(input, maxOutput, [reservationPrice(claude, '1h')])).toBeGreaterThanOrEqual(
      micros(bill),
    );
  });

  it('when every input token is written for five minutes, then the five-minute rate is reserved, not the hour', () => {
    const bill = costOf(
      { inputTokens: input, outputTokens: maxOutput, cachedInputTokens: 0, cacheWriteTokens: input },
      claude,
    );
    const reserved = worstCaseMicros(input, maxOutput, [reservationPrice(claude, '5m')]);
    expect(reserved).toBeGreaterThanOrEqual(micros(bill));
    expect(reserved).toBeLessThan(worstCaseMicros(input, maxOutput, [reservationPrice(claude, '1h')]));
  });

  it('when a model lists only a five-minute write rate, then one-hour writes are reserved at it, as they are billed', () => {
    const price: Price = { input: 1, output: 2, cacheWriteInput: 1.5 };
    expect(reservationPrice(price, '1h')?.input).toBe(1.5);
  });

  it('when a provider bills no cache writes (OpenAI, Gemini), then breakpoints change nothing', () => {
    const gpt = DEFAULT_PRICES['gpt-4o'] as Price;
    expect(reservationPrice(gpt, '1h')).toEqual(gpt);
    expect(reservationPrice(claude, 'none')).toBe(claude);
    expect(reservationPrice(undefined, '1h')).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { type ChatRequest, emptyUsage, mergeUsage, type StreamEvent } from '../../canonical.js';
import { SseParser } from '../../sse.js';
import { AnthropicStreamEncoder, anthropicCaller, decodeAnthropicRequest } from './caller.js';
import { ANTHROPIC_THINKING_STREAM } from './fixtures.js';
import {
  ANTHROPIC_DEFAULT_MAX_TOKENS,
  AnthropicStreamDecoder,
  anthropicProvider,
  decodeAnthropicResponse,
  encodeAnthropicRequest,
} from './provider.js';

const ephemeral = { type: 'ephemeral' } as const;
const hour = { type: 'ephemeral', ttl: '1h' } as const;

/** A Messages request using every cache breakpoint and thinking, in the shape Anthropic documents. */
const cachedThinkingRequest = {
  model: 'claude-sonnet-4-5',
  max_tokens: 16_000,
  thinking: { type: 'enabled', budget_tokens: 10_000 },
  cache_control: ephemeral,
  system: [
    { type: 'text', text: 'You are a weather assistant.' },
    { type: 'text', text: 'A long, stable reference manual.', cache_control: hour },
  ],
  tools: [
    {
      name: 'get_weather',
      description: 'Weather by city',
      input_schema: { type: 'object', properties: { city: { type: 'string' } } },
      cache_control: ephemeral,
    },
  ],
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'A long document to cache.', cache_control: ephemeral },
        {
          type: 'image',
          source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' },
          cache_control: ephemeral,
        },
        { type: 'text', text: 'Weather in Zürich?' },
      ],
    },
    {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'I need the weather tool.', signature: 'EqQBCkgIBxABsig==' },
        { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix' },
        { type: 'text', text: 'Let me check.', cache_control: ephemeral },
        {
          type: 'tool_use',
          id: 'toolu_01A',
          name: 'get_weather',
          input: { city: 'Zürich' },
          cache_control: ephemeral,
        },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_01A', content: '18°C', cache_control: ephemeral },
        { type: 'text', text: 'Thanks, and tomorrow?' },
      ],
    },
  ],
};

/** Expects the body to be refused as an invalid request naming `param`. */
function expectRejected(body: unknown, param: string, message?: RegExp): void {
  expect(() => decodeAnthropicRequest(body)).toThrowError(
    expect.objectContaining({
      code: 'invalid_request',
      param,
      ...(message ? { message: expect.stringMatching(message) } : {}),
    }),
  );
}

const canonical = (overrides: Partial<ChatRequest>): ChatRequest => ({
  model: 'm',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Think.' }] }],
  stream: false,
  ...overrides,
});

describe('anthropic caller → anthropic upstream: prompt caching and extended thinking', () => {
  it('when a request uses cache breakpoints everywhere and thinking, then the upstream gets it unchanged', () => {
    const decoded = decodeAnthropicRequest(cachedThinkingRequest);
    expect(anthropicProvider.encodeChatRequest(decoded, 'claude-sonnet-4-5')).toEqual(cachedThinkingRequest);
  });

  it('when thinking is disabled or adaptive with a display, then the upstream gets the same setting', () => {
    for (const thinking of [
      { type: 'disabled' },
      { type: 'adaptive', display: 'omitted' },
      { type: 'enabled', budget_tokens: 2048, display: 'summarized' },
    ]) {
      const body = { ...cachedThinkingRequest, thinking };
      expect(anthropicProvider.encodeChatRequest(decodeAnthropicRequest(body), 'm').thinking).toEqual(
        thinking,
      );
    }
  });

  it('when budget_tokens is below 1024, then the request is rejected naming the field', () => {
    expectRejected(
      { ...cachedThinkingRequest, thinking: { type: 'enabled', budget_tokens: 512 } },
      'thinking.budget_tokens',
      /^thinking\.budget_tokens: must be >= 1024$/,
    );
  });

  it('when budget_tokens is not below max_tokens, then the request is rejected naming both', () => {
    expectRejected(
      { ...cachedThinkingRequest, max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 2048 } },
      'thinking.budget_tokens',
      /^thinking\.budget_tokens: must be less than max_tokens \(2048\)/,
    );
  });

  it('when a thinking block in the history has no signature, then the request is rejected', () => {
    expectRejected(
      {
        ...cachedThinkingRequest,
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: [{ type: 'thinking', thinking: 'hm' }] },
          { role: 'user', content: 'y' },
        ],
      },
      'messages.1.content.0.signature',
    );
  });

  it('when cache_control is not an ephemeral marker, then the request is rejected naming the block', () => {
    expectRejected(
      { ...cachedThinkingRequest, system: [{ type: 'text', text: 'x', cache_control: { type: 'forever' } }] },
      'system.0.cache_control',
    );
  });

  it('when the thinking type is unknown, then the request is rejected', () => {
    expectRejected({ ...cachedThinkingRequest, thinking: { type: 'sometimes' } }, 'thinking.type');
  });

  it('when a single system text carries no breakpoint, then it still goes as a plain string', () => {
    const body = { ...cachedThinkingRequest, system: [{ type: 'text', text: 'Be brief.' }] };
    expect(anthropicProvider.encodeChatRequest(decodeAnthropicRequest(body), 'm').system).toBe('Be brief.');
  });
});

describe('anthropic upstream → anthropic caller: thinking in answers', () => {
  const message = {
    id: 'msg_01X',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-5',
    content: [
      { type: 'thinking', thinking: 'Step one.', signature: 'EqQBsig' },
      { type: 'redacted_thinking', data: 'EmwKAhgBEgy' },
      { type: 'text', text: 'Answer.' },
    ],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: {
      input_tokens: 5,
      output_tokens: 90,
      cache_creation_input_tokens: 100,
      cache_read_input_tokens: 2000,
      output_tokens_details: { thinking_tokens: 70 },
      cache_creation: { ephemeral_5m_input_tokens: 60, ephemeral_1h_input_tokens: 40 },
    },
  };

  it('when a message has thinking and redacted thinking, then the caller gets them unchanged with usage', () => {
    const decoded = decodeAnthropicResponse(message);
    expect(decoded.reasoning).toEqual([
      { type: 'thinking', text: 'Step one.', signature: 'EqQBsig' },
      { type: 'redacted', data: 'EmwKAhgBEgy' },
    ]);
    expect(decoded.usage).toEqual({
      inputTokens: 2105,
      outputTokens: 90,
      cachedInputTokens: 2000,
      cacheWriteTokens: 100,
      cacheWrite1hTokens: 40,
      reasoningTokens: 70,
    });
    expect(anthropicCaller.encodeChatResponse(decoded, 'claude')).toEqual({ ...message, model: 'claude' });
  });

  it('when cache writes are split by TTL, then the one-hour part is kept for pricing, streamed or not', () => {
    const usage = {
      input_tokens: 10,
      output_tokens: 5,
      cache_creation_input_tokens: 900,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 300, ephemeral_1h_input_tokens: 600 },
    };
    expect(decodeAnthropicResponse({ ...message, usage }).usage).toMatchObject({
      inputTokens: 910,
      cacheWriteTokens: 900,
      cacheWrite1hTokens: 600,
    });
    const decoder = new AnthropicStreamDecoder();
    const events = decoder.push({
      event: 'message_start',
      data: JSON.stringify({ type: 'message_start', message: { id: 'msg_1', model: 'm', usage } }),
    });
    expect(events.at(-1)).toMatchObject({ type: 'usage', usage: { cacheWrite1hTokens: 600 } });
  });

  it('when a thinking stream is decoded and re-encoded, then every frame but message_start is identical', () => {
    const decoder = new AnthropicStreamDecoder();
    const encoder = new AnthropicStreamEncoder('claude-sonnet-4-5-20250929');
    let usage = emptyUsage();
    let reencoded = '';
    const parser = new SseParser();
    for (const sse of [...parser.push(ANTHROPIC_THINKING_STREAM), ...parser.end()]) {
      for (const event of decoder.push(sse)) {
        if (event.type === 'usage') usage = mergeUsage(usage, event.usage);
        reencoded += encoder.encode(event);
      }
    }
    reencoded += encoder.end(usage);
    expect(decoder.done).toBe(true);

    const original = new SseParser().push(ANTHROPIC_THINKING_STREAM).filter((m) => m.event !== 'ping');
    const copy = new SseParser().push(reencoded);
    expect(copy.map((m) => m.event)).toEqual(original.map((m) => m.event));
    const parse = (data: string): unknown => JSON.parse(data);
    expect(copy.slice(1).map((m) => parse(m.data))).toEqual(original.slice(1).map((m) => parse(m.data)));
    expect(usage).toMatchObject({ inputTokens: 1209, cacheWriteTokens: 1200, reasoningTokens: 120 });
  });

  it('when two thinking blocks follow each other, then the signature keeps them apart', () => {
    const encoder = new AnthropicStreamEncoder('m');
    const events: StreamEvent[] = [
      { type: 'start', id: 'msg_1', model: 'm', created: 0 },
      { type: 'reasoning', delta: 'first' },
      { type: 'reasoning_signature', signature: 'sig1' },
      { type: 'reasoning', delta: 'second' },
      { type: 'reasoning_signature', signature: 'sig2' },
      { type: 'text', delta: 'done' },
    ];
    const text = events.map((event) => encoder.encode(event)).join('') + encoder.end(emptyUsage());
    const starts = new SseParser()
      .push(text)
      .filter((m) => m.event === 'content_block_start')
      .map((m) => JSON.parse(m.data) as { index: number; content_block: { type: string } });
    expect(starts.map((s) => [s.index, s.content_block.type])).toEqual([
      [0, 'thinking'],
      [1, 'thinking'],
      [2, 'text'],
    ]);
  });
});

describe('canonical reasoning → anthropic thinking (other callers)', () => {
  it('when an effort is asked with no token limit, then the mapped budget plus the default answer length is sent', () => {
    const body = encodeAnthropicRequest(canonical({ reasoning: { type: 'effort', effort: 'high' } }), 'm');
    expect(body.thinking).toEqual({ type: 'enabled', budget_tokens: 24_576 });
    expect(body.max_tokens).toBe(24_576 + ANTHROPIC_DEFAULT_MAX_TOKENS);
  });

  it('when the token limit is below the mapped budget, then the budget is fitted under it', () => {
    const body = encodeAnthropicRequest(
      canonical({ maxTokens: 10_000, reasoning: { type: 'effort', effort: 'high' } }),
      'm',
    );
    expect(body).toMatchObject({ max_tokens: 10_000, thinking: { type: 'enabled', budget_tokens: 9_999 } });
  });

  it('when the token limit leaves no room for the minimum budget, then no thinking is asked for', () => {
    const body = encodeAnthropicRequest(
      canonical({ maxTokens: 1024, reasoning: { type: 'effort', effort: 'low' } }),
      'm',
    );
    expect(body.thinking).toBeUndefined();
    expect(body.max_tokens).toBe(1024);
  });

  it('when a budget below the minimum comes from another format, then it is raised to 1024', () => {
    const body = encodeAnthropicRequest(
      canonical({ maxTokens: 4000, reasoning: { type: 'budget', budgetTokens: 300 } }),
      'm',
    );
    expect(body.thinking).toEqual({ type: 'enabled', budget_tokens: 1024 });
  });

  it('when the Claude model predates thinking, then no thinking setting is sent', () => {
    for (const model of [
      'claude-3-5-haiku-20241022',
      'claude-3-haiku-20240307',
      'claude-3-5-sonnet-latest',
    ]) {
      const body = encodeAnthropicRequest(
        canonical({ reasoning: { type: 'effort', effort: 'high' } }),
        model,
      );
      expect(body.thinking).toBeUndefined();
    }
    const body = encodeAnthropicRequest(
      canonical({ reasoning: { type: 'effort', effort: 'high' } }),
      'claude-3-7-sonnet-latest',
    );
    expect(body.thinking).toEqual({ type: 'enabled', budget_tokens: 24_576 });
  });

  it('when thinking is off (effort none, budget 0) or left to the model, then disabled or adaptive is sent', () => {
    expect(
      encodeAnthropicRequest(canonical({ reasoning: { type: 'effort', effort: 'none' } }), 'm').thinking,
    ).toEqual({ type: 'disabled' });
    expect(encodeAnthropicRequest(canonical({ reasoning: { type: 'disabled' } }), 'm').thinking).toEqual({
      type: 'disabled',
    });
    expect(encodeAnthropicRequest(canonical({ reasoning: { type: 'adaptive' } }), 'm').thinking).toEqual({
      type: 'adaptive',
    });
  });
});

import { describe, expect, it } from 'vitest';
import type { ChatRequest, ChatResponse, StreamEvent } from '../../canonical.js';
import { decodeOpenAIChatRequest, encodeOpenAIChatResponse, openAICaller } from './caller.js';
import { createOpenAIWire } from './provider.js';

const wire = createOpenAIWire({ maxTokensField: 'max_completion_tokens' });
const ask = { model: 'o4-mini', messages: [{ role: 'user', content: 'Think.' }] };
const request = (overrides: Partial<ChatRequest>): ChatRequest => ({
  model: 'm',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Think.' }] }],
  stream: false,
  ...overrides,
});

describe('OpenAI reasoning_effort and reasoning tokens', () => {
  it('when reasoning_effort is sent, then it becomes a canonical effort and reaches an OpenAI upstream unchanged', () => {
    for (const effort of ['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']) {
      const decoded = decodeOpenAIChatRequest({ ...ask, reasoning_effort: effort });
      expect(decoded.reasoning).toEqual({ type: 'effort', effort });
      expect(wire.encodeChatRequest(decoded, 'o4-mini').reasoning_effort).toBe(effort);
    }
  });

  it('when reasoning_effort is not a documented level, then the request is rejected naming it', () => {
    expect(() => decodeOpenAIChatRequest({ ...ask, reasoning_effort: 'extreme' })).toThrowError(
      expect.objectContaining({
        param: 'reasoning_effort',
        message: expect.stringContaining('none, minimal, low, medium, high, xhigh, max'),
      }),
    );
  });

  it('when a thinking budget comes from another format, then a reasoning model gets the smallest level covering it', () => {
    const effortFor = (budgetTokens: number, model = 'o4-mini'): unknown =>
      wire.encodeChatRequest(request({ reasoning: { type: 'budget', budgetTokens } }), model)
        .reasoning_effort;
    expect(effortFor(1024)).toBe('low');
    expect(effortFor(5000, 'gpt-5-mini')).toBe('medium');
    expect(effortFor(20_000, 'o3')).toBe('high');
    // Models that do not reason reject the parameter: the hint is dropped instead.
    expect(effortFor(20_000, 'gpt-4o')).toBeUndefined();
    expect(effortFor(20_000, 'gpt-5-chat-latest')).toBeUndefined();
  });

  it('when thinking is disabled or adaptive, or not asked, then no reasoning_effort is sent', () => {
    for (const reasoning of [{ type: 'disabled' }, { type: 'adaptive' }, undefined] as const) {
      const body = wire.encodeChatRequest(request(reasoning ? { reasoning } : {}), 'm');
      expect(body).not.toHaveProperty('reasoning_effort');
    }
  });

  it('when a cache breakpoint or reasoning-only turn comes from an Anthropic caller, then OpenAI gets neither', () => {
    const body = wire.encodeChatRequest(
      request({
        messages: [
          { role: 'system', content: 'Manual.', cacheControl: { type: 'ephemeral' } },
          { role: 'user', content: [{ type: 'text', text: 'Hi', cacheControl: { type: 'ephemeral' } }] },
          { role: 'assistant', content: null, reasoning: [{ type: 'thinking', text: 'hm', signature: 's' }] },
          { role: 'user', content: [{ type: 'text', text: 'Go on' }] },
        ],
        cacheControl: { type: 'ephemeral' },
      }),
      'gpt-4o',
    );
    expect(body.messages).toEqual([
      { role: 'system', content: 'Manual.' },
      { role: 'user', content: 'Hi' },
      { role: 'user', content: 'Go on' },
    ]);
    expect(JSON.stringify(body)).not.toContain('cache');
  });

  it('when the upstream reports reasoning and cached tokens, then they are read and given back to the caller', () => {
    const response = wire.decodeChatResponse({
      id: 'chatcmpl-1',
      model: 'o4-mini',
      created: 1,
      choices: [{ index: 0, message: { role: 'assistant', content: '42' }, finish_reason: 'stop' }],
      usage: {
        prompt_tokens: 2000,
        completion_tokens: 300,
        total_tokens: 2300,
        prompt_tokens_details: { cached_tokens: 1536 },
        completion_tokens_details: { reasoning_tokens: 256 },
      },
    });
    expect(response.usage).toEqual({
      inputTokens: 2000,
      outputTokens: 300,
      cachedInputTokens: 1536,
      reasoningTokens: 256,
    });
    expect(encodeOpenAIChatResponse(response, 'o4-mini').usage).toEqual({
      prompt_tokens: 2000,
      completion_tokens: 300,
      total_tokens: 2300,
      prompt_tokens_details: { cached_tokens: 1536 },
      completion_tokens_details: { reasoning_tokens: 256 },
    });
  });

  it('when another provider thought, then its text stays hidden and only the counts reach an OpenAI caller', () => {
    const answer: ChatResponse = {
      id: 'msg_1',
      model: 'claude',
      created: 1,
      content: 'Answer.',
      toolCalls: [],
      reasoning: [{ type: 'thinking', text: 'secret chain of thought', signature: 'sig' }],
      finishReason: 'stop',
      usage: {
        inputTokens: 100,
        outputTokens: 50,
        cachedInputTokens: 60,
        cacheWriteTokens: 30,
        reasoningTokens: 40,
      },
    };
    const body = encodeOpenAIChatResponse(answer, 'claude');
    expect(JSON.stringify(body)).not.toContain('secret');
    expect(body.usage).toMatchObject({
      prompt_tokens: 100,
      prompt_tokens_details: { cached_tokens: 60 },
      completion_tokens_details: { reasoning_tokens: 40 },
    });

    const encoder = openAICaller.createStreamEncoder('claude', { includeUsage: true });
    const events: StreamEvent[] = [
      { type: 'start', id: 'x', model: 'claude', created: 1 },
      { type: 'reasoning', delta: 'secret chain of thought' },
      { type: 'reasoning_signature', signature: 'sig' },
      { type: 'reasoning_redacted', data: 'opaque' },
      { type: 'text', delta: 'Answer.' },
    ];
    const text = events.map((event) => encoder.encode(event)).join('') + encoder.end(answer.usage);
    expect(text).not.toContain('secret');
    expect(text).not.toContain('opaque');
    expect(text).toContain('"completion_tokens_details":{"reasoning_tokens":40}');
  });

  it('when the provider reports no reasoning count, then completion_tokens_details is left out', () => {
    const usage = encodeOpenAIChatResponse(
      {
        id: 'x',
        model: 'm',
        created: 1,
        content: 'a',
        toolCalls: [],
        finishReason: 'stop',
        usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 },
      },
      'm',
    ).usage;
    expect(usage).not.toHaveProperty('completion_tokens_details');
  });
});

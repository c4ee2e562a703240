import { AppError } from '@flowloom/errors';
import { describe, expect, it } from 'vitest';
import { type ChatRequest, emptyUsage, mergeUsage, type StreamEvent } from '../../canonical.js';
import { type SseMessage, SseParser } from '../../sse.js';
import { ANTHROPIC_TOOL_MESSAGE, ANTHROPIC_TOOL_STREAM } from './fixtures.js';
import {
  ANTHROPIC_DEFAULT_MAX_TOKENS,
  AnthropicStreamDecoder,
  anthropicProvider,
  JSON_OBJECT_INSTRUCTION,
} from './provider.js';

const base: ChatRequest = {
  model: 'alias',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
  stream: false,
};

describe('anthropic provider: encoding a request', () => {
  it('when an OpenAI-style conversation is encoded, then system is lifted and tool results merge into one user turn', () => {
    const body = anthropicProvider.encodeChatRequest(
      {
        model: 'alias',
        stream: true,
        maxTokens: 500,
        temperature: 1.7,
        topP: 0.5,
        stop: ['###'],
        user: 'u-1',
        messages: [
          { role: 'system', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Weather and time in Paris? See map.' },
              { type: 'image', url: 'data:image/png;base64,iVBORw0KGgo=', mediaType: 'image/png' },
              { type: 'image', url: 'https://example.com/map.webp' },
              { type: 'text', text: '' },
            ],
          },
          {
            role: 'assistant',
            content: null,
            toolCalls: [
              { id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' },
              { id: 'call_2', name: 'time', arguments: '' },
            ],
          },
          { role: 'tool', toolCallId: 'call_1', content: '{"temp":18}' },
          { role: 'tool', toolCallId: 'call_2', content: 'unavailable', isError: true },
          { role: 'system', content: 'Answer in French.' },
          { role: 'user', content: [{ type: 'text', text: 'Merci' }] },
          { role: 'assistant', content: 'Voici ' },
        ],
        tools: [
          {
            name: 'weather',
            description: 'Weather',
            parameters: { type: 'object', properties: { city: { type: 'string' } } },
          },
          { name: 'time', parameters: {} },
        ],
        toolChoice: { type: 'tool', name: 'weather' },
        parallelToolCalls: false,
      },
      'claude-sonnet-4-5',
    );

    expect(body).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 500,
      stream: true,
      temperature: 1,
      top_p: 0.5,
      stop_sequences: ['###'],
      metadata: { user_id: 'u-1' },
      system: [
        { type: 'text', text: 'Be brief.' },
        { type: 'text', text: 'Answer in French.' },
      ],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Weather and time in Paris? See map.' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/map.webp' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'call_1', name: 'weather', input: { city: 'Paris' } },
            { type: 'tool_use', id: 'call_2', name: 'time', input: {} },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'call_1', content: '{"temp":18}' },
            { type: 'tool_result', tool_use_id: 'call_2', content: 'unavailable', is_error: true },
            { type: 'text', text: 'Merci' },
          ],
        },
        // A final assistant turn is a prefill, which may not end in whitespace.
        { role: 'assistant', content: [{ type: 'text', text: 'Voici' }] },
      ],
      tools: [
        {
          name: 'weather',
          description: 'Weather',
          input_schema: { type: 'object', properties: { city: { type: 'string' } } },
        },
        { name: 'time', input_schema: { type: 'object' } },
      ],
      tool_choice: { type: 'tool', name: 'weather', disable_parallel_tool_use: true },
    });
  });

  it('when the caller set no max tokens, then the documented default is sent', () => {
    const body = anthropicProvider.encodeChatRequest(base, 'claude-haiku-4-5');
    expect(body['max_tokens']).toBe(ANTHROPIC_DEFAULT_MAX_TOKENS);
    expect(body['stream']).toBeUndefined();
    expect(body['system']).toBeUndefined();
    expect(body['messages']).toEqual([{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }]);
  });

  it('when one system message is given, then system is a plain string', () => {
    const body = anthropicProvider.encodeChatRequest(
      { ...base, messages: [{ role: 'system', content: 'S' }, ...base.messages] },
      'm',
    );
    expect(body['system']).toBe('S');
  });

  it('when a JSON schema response is asked for, then it uses output_config.format', () => {
    const schema = { type: 'object', properties: { a: { type: 'number' } }, additionalProperties: false };
    const body = anthropicProvider.encodeChatRequest(
      { ...base, responseFormat: { type: 'json_schema', name: 'x', schema, strict: true } },
      'm',
    );
    expect(body['output_config']).toEqual({ format: { type: 'json_schema', schema } });
  });

  it('when plain JSON mode is asked for, then an instruction is appended to the system prompt', () => {
    const body = anthropicProvider.encodeChatRequest(
      {
        ...base,
        messages: [{ role: 'system', content: 'S' }, ...base.messages],
        responseFormat: { type: 'json_object' },
      },
      'm',
    );
    expect(body['system']).toEqual([
      { type: 'text', text: 'S' },
      { type: 'text', text: JSON_OBJECT_INSTRUCTION },
    ]);
    expect(body['output_config']).toBeUndefined();
  });

  it.each([
    [{ type: 'auto' }, undefined, { type: 'auto' }],
    [{ type: 'required' }, undefined, { type: 'any' }],
    [{ type: 'none' }, false, { type: 'none' }],
    [undefined, false, { type: 'auto', disable_parallel_tool_use: true }],
    [undefined, undefined, undefined],
  ] as const)(
    'when tool choice is %j with parallel %s, then tool_choice is %j',
    (choice, parallel, expected) => {
      const body = anthropicProvider.encodeChatRequest(
        {
          ...base,
          tools: [{ name: 't', parameters: { type: 'object' } }],
          ...(choice ? { toolChoice: choice } : {}),
          ...(parallel !== undefined ? { parallelToolCalls: parallel } : {}),
        },
        'm',
      );
      expect(body['tool_choice']).toEqual(expected);
    },
  );

  it('when a tool choice comes without tools, then none is sent (Anthropic rejects it)', () => {
    const body = anthropicProvider.encodeChatRequest({ ...base, toolChoice: { type: 'required' } }, 'm');
    expect(body['tool_choice']).toBeUndefined();
  });

  it('when an image data URL is not base64, then the request is rejected naming the part', () => {
    expect(() =>
      anthropicProvider.encodeChatRequest(
        {
          ...base,
          messages: [{ role: 'user', content: [{ type: 'image', url: 'data:image/svg+xml,<svg/>' }] }],
        },
        'm',
      ),
    ).toThrowError(/messages\.0\.content\.0/);
  });
});

describe('anthropic provider: decoding a message', () => {
  it('when a message with thinking, text and tool calls is decoded, then usage counts cache reads and writes as input', () => {
    const response = anthropicProvider.decodeChatResponse(ANTHROPIC_TOOL_MESSAGE);
    expect(response).toEqual({
      id: 'msg_01QC4g3HwBThD4BaNtBckFDJ',
      model: 'claude-sonnet-4-5-20250929',
      created: expect.any(Number),
      content: 'Je vérifie la météo à Zürich ☀️ et l’heure.',
      toolCalls: [
        { id: 'toolu_01KFbKqPYSuAKujiL6mTfzYA', name: 'get_weather', arguments: '{"city":"Zürich"}' },
        { id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_time', arguments: '{"tz":"Europe/Zurich"}' },
      ],
      reasoning: [{ type: 'thinking', text: 'The user wants two things.', signature: 'EqQBCgIYAhIM' }],
      finishReason: 'tool_calls',
      stopSequence: null,
      usage: {
        inputTokens: 12 + 2048 + 300,
        outputTokens: 89,
        cachedInputTokens: 2048,
        cacheWriteTokens: 300,
      },
    });
  });

  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['tool_use', 'tool_calls'],
    ['refusal', 'content_filter'],
    ['pause_turn', 'stop'],
  ])('when stop_reason is %s, then the finish reason is %s', (reason, finish) => {
    const response = anthropicProvider.decodeChatResponse({
      ...ANTHROPIC_TOOL_MESSAGE,
      stop_reason: reason,
      stop_sequence: reason === 'stop_sequence' ? '###' : null,
    });
    expect(response.finishReason).toBe(finish);
    expect(response.stopSequence).toBe(reason === 'stop_sequence' ? '###' : null);
  });

  it('when the body is not a message, then it is an upstream_bad_response naming the field', () => {
    let caught: unknown;
    try {
      anthropicProvider.decodeChatResponse({ ...ANTHROPIC_TOOL_MESSAGE, usage: { input_tokens: 'x' } });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('upstream_bad_response');
    expect((caught as AppError).message).toContain('usage.input_tokens');
  });
});

/** Feeds `text` as UTF-8 bytes cut at the given offsets, the way a socket may deliver it. */
function decodeInPieces(text: string, cuts: number[]): { events: StreamEvent[]; done: boolean } {
  const bytes = new TextEncoder().encode(text);
  const parser = new SseParser();
  const decoder = anthropicProvider.createStreamDecoder();
  const events: StreamEvent[] = [];
  const feed = (messages: SseMessage[]): void => {
    for (const message of messages) events.push(...decoder.push(message));
  };
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    feed(parser.push(bytes.subarray(start, cut)));
    start = cut;
  }
  feed(parser.end());
  return { events, done: decoder.done };
}

describe('anthropic provider: decoding a stream', () => {
  const expected: StreamEvent[] = [
    {
      type: 'start',
      id: 'msg_01QC4g3HwBThD4BaNtBckFDJ',
      model: 'claude-sonnet-4-5-20250929',
      created: expect.any(Number),
    },
    {
      type: 'usage',
      usage: { inputTokens: 2360, outputTokens: 1, cachedInputTokens: 2048, cacheWriteTokens: 300 },
    },
    { type: 'text', delta: 'Je vérifie la météo à Zürich ' },
    { type: 'text', delta: '☀️ et l’heure.' },
    { type: 'tool_call_start', index: 0, id: 'toolu_01KFbKqPYSuAKujiL6mTfzYA', name: 'get_weather' },
    { type: 'tool_call_delta', index: 0, argumentsDelta: '{"city": "Zü' },
    { type: 'tool_call_delta', index: 0, argumentsDelta: 'rich"}' },
    { type: 'tool_call_start', index: 1, id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_time' },
    { type: 'tool_call_delta', index: 1, argumentsDelta: '{"tz": "Europe/Zurich"}' },
    { type: 'finish', finishReason: 'tool_calls', stopSequence: null },
    {
      type: 'usage',
      usage: { inputTokens: 2360, outputTokens: 89, cachedInputTokens: 2048, cacheWriteTokens: 300 },
    },
  ];

  it('when the recorded transcript arrives whole, then it decodes to the canonical sequence and ends done', () => {
    const { events, done } = decodeInPieces(ANTHROPIC_TOOL_STREAM, []);
    expect(events).toEqual(expected);
    expect(done).toBe(true);
  });

  it('when the transcript is split at every byte boundary, then the events are the same', () => {
    const length = new TextEncoder().encode(ANTHROPIC_TOOL_STREAM).length;
    for (let size = 1; size <= 97; size += 8) {
      const cuts: number[] = [];
      for (let at = size; at < length; at += size) cuts.push(at);
      expect(decodeInPieces(ANTHROPIC_TOOL_STREAM, cuts).events).toEqual(expected);
    }
  });

  it('when the transcript is split at random places, then the events are the same', () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const length = new TextEncoder().encode(ANTHROPIC_TOOL_STREAM).length;
    for (let round = 0; round < 50; round++) {
      const cuts = Array.from({ length: 12 }, () => Math.floor(random() * length)).sort((a, b) => a - b);
      expect(decodeInPieces(ANTHROPIC_TOOL_STREAM, cuts).events).toEqual(expected);
    }
  });

  it('when the summed stream usage is folded, then it equals the non-streamed usage', () => {
    const { events } = decodeInPieces(ANTHROPIC_TOOL_STREAM, []);
    const total = events.reduce(
      (usage, event) => (event.type === 'usage' ? mergeUsage(usage, event.usage) : usage),
      emptyUsage(),
    );
    expect(total).toEqual(anthropicProvider.decodeChatResponse(ANTHROPIC_TOOL_MESSAGE).usage);
  });

  it('when the stream is cut before message_stop, then the decoder is not done', () => {
    const cut = ANTHROPIC_TOOL_STREAM.indexOf('event: message_stop');
    expect(decodeInPieces(ANTHROPIC_TOOL_STREAM.slice(0, cut), []).done).toBe(false);
  });

  it('when an error event arrives, then the decoder throws upstream_error with the upstream type', () => {
    const decoder = new AnthropicStreamDecoder();
    const [message] = new SseParser().push(
      'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n',
    );
    expect(message).toBeDefined();
    let caught: unknown;
    try {
      decoder.push(message as SseMessage);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('upstream_error');
    expect((caught as AppError).message).toContain('Overloaded');
    expect((caught as AppError).details).toEqual({ upstreamType: 'overloaded_error' });
  });

  it('when a data line is not JSON, then it is an upstream_bad_response', () => {
    const decoder = new AnthropicStreamDecoder();
    expect(() => decoder.push({ event: 'content_block_delta', data: '{"type":' })).toThrowError(AppError);
  });

  it('when an unknown event type arrives, then it is ignored as the SDKs do', () => {
    const decoder = new AnthropicStreamDecoder();
    expect(decoder.push({ event: 'future_event', data: '{"type":"future_event","x":1}' })).toEqual([]);
  });

  it('when thinking and redacted thinking blocks stream, then they become reasoning events with the signature', () => {
    const decoder = new AnthropicStreamDecoder();
    const push = (event: string, data: object): StreamEvent[] =>
      decoder.push({ event, data: JSON.stringify(data) });
    expect(
      push('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'thinking', thinking: '', signature: '' },
      }),
    ).toEqual([{ type: 'reasoning', delta: '' }]);
    expect(
      push('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'thinking_delta', thinking: 'hmm' },
      }),
    ).toEqual([{ type: 'reasoning', delta: 'hmm' }]);
    expect(
      push('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'signature_delta', signature: 'EqQBsig' },
      }),
    ).toEqual([{ type: 'reasoning_signature', signature: 'EqQBsig' }]);
    expect(push('content_block_stop', { type: 'content_block_stop', index: 0 })).toEqual([]);
    expect(
      push('content_block_start', {
        type: 'content_block_start',
        index: 1,
        content_block: { type: 'redacted_thinking', data: 'EmwKAhgBEgy' },
      }),
    ).toEqual([{ type: 'reasoning_redacted', data: 'EmwKAhgBEgy' }]);
  });

  it('when message_delta reports thinking tokens, then usage carries them as reasoning tokens', () => {
    const decoder = new AnthropicStreamDecoder();
    const events = decoder.push({
      event: 'message_delta',
      data: JSON.stringify({
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: 120, output_tokens_details: { thinking_tokens: 100 } },
      }),
    });
    expect(events.at(-1)).toEqual({
      type: 'usage',
      usage: expect.objectContaining({ outputTokens: 120, reasoningTokens: 100 }),
    });
  });
});

describe('anthropic provider: decoding errors', () => {
  it('when the body is the documented error shape, then its type and message are read', () => {
    expect(
      anthropicProvider.decodeError(429, {
        type: 'error',
        error: {
          type: 'rate_limit_error',
          message: 'Number of request tokens has exceeded your per-minute rate limit',
        },
        request_id: 'req_011CUsmyGA9EBGJqSFtdNwrw',
      }),
    ).toEqual({
      type: 'rate_limit_error',
      message: 'Number of request tokens has exceeded your per-minute rate limit',
    });
  });

  it.each([
    [529, '<html>busy</html>', 'overloaded_error', '<html>busy</html>'],
    [401, {}, 'authentication_error', 'Anthropic returned HTTP 401.'],
    [502, undefined, 'api_error', 'Anthropic returned HTTP 502.'],
  ])(
    'when status %i comes with an undocumented body, then the type follows the status',
    (status, body, type, message) => {
      expect(anthropicProvider.decodeError(status, body)).toEqual({ type, message });
    },
  );
});

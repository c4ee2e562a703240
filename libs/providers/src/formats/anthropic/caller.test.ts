import { AppError } from '@flowloom/errors';
import { describe, expect, it } from 'vitest';
import type { ChatResponse, StreamEvent, Usage } from '../../canonical.js';
import { SseParser } from '../../sse.js';
import {
  AnthropicStreamEncoder,
  anthropicCaller,
  decodeAnthropicBetas,
  decodeAnthropicRequest,
} from './caller.js';

const minimal = { model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Hi' }] };

function decodeError(body: unknown): AppError {
  try {
    decodeAnthropicRequest(body);
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected the request to be rejected');
}

/** The SSE text as (event name, parsed data) pairs, the way an SDK reads it. */
function readSse(text: string): { event: string | undefined; data: Record<string, unknown> }[] {
  return new SseParser()
    .push(text)
    .map((message) => ({ event: message.event, data: JSON.parse(message.data) }));
}

describe('anthropic caller: decoding a Messages request', () => {
  it('when a full request is decoded, then every field lands in the canonical request', () => {
    const request = decodeAnthropicRequest({
      model: 'claude-sonnet-4-5',
      max_tokens: 1024,
      system: [
        { type: 'text', text: 'You are terse.' },
        { type: 'text', text: 'Answer in English.', cache_control: { type: 'ephemeral' } },
      ],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this picture, and the weather in Paris?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'Two things to do.', signature: 'sig' },
            { type: 'text', text: 'A cat. Checking the weather.' },
            { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris', days: 2 } },
            { type: 'tool_use', id: 'toolu_02', name: 'get_time', input: {} },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_01', content: [{ type: 'text', text: '18°C' }] },
            { type: 'tool_result', tool_use_id: 'toolu_02', content: 'timeout', is_error: true },
            { type: 'text', text: 'Thanks!' },
          ],
        },
      ],
      tools: [
        {
          name: 'get_weather',
          description: 'Weather by city',
          input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
        { name: 'get_time', input_schema: { type: 'object', properties: {} } },
      ],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      stop_sequences: ['END'],
      temperature: 0.2,
      top_p: 0.9,
      top_k: 40,
      stream: true,
      metadata: { user_id: 'user-42' },
    });

    expect(request).toEqual({
      model: 'claude-sonnet-4-5',
      maxTokens: 1024,
      stream: true,
      includeUsage: true,
      temperature: 0.2,
      topP: 0.9,
      stop: ['END'],
      user: 'user-42',
      parallelToolCalls: false,
      toolChoice: { type: 'required' },
      tools: [
        {
          name: 'get_weather',
          description: 'Weather by city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
        { name: 'get_time', parameters: { type: 'object', properties: {} } },
      ],
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'system', content: 'Answer in English.', cacheControl: { type: 'ephemeral' } },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this picture, and the weather in Paris?' },
            { type: 'image', url: 'data:image/png;base64,iVBORw0KGgo=', mediaType: 'image/png' },
            { type: 'image', url: 'https://example.com/cat.jpg' },
          ],
        },
        {
          role: 'assistant',
          content: 'A cat. Checking the weather.',
          reasoning: [{ type: 'thinking', text: 'Two things to do.', signature: 'sig' }],
          toolCalls: [
            { id: 'toolu_01', name: 'get_weather', arguments: '{"city":"Paris","days":2}' },
            { id: 'toolu_02', name: 'get_time', arguments: '{}' },
          ],
        },
        { role: 'tool', toolCallId: 'toolu_01', content: '18°C' },
        { role: 'tool', toolCallId: 'toolu_02', content: 'timeout', isError: true },
        { role: 'user', content: [{ type: 'text', text: 'Thanks!' }] },
      ],
    });
  });

  it('when the system prompt is a string and the request does not stream, then no usage flag is set', () => {
    const request = decodeAnthropicRequest({ ...minimal, system: 'Be kind.' });
    expect(request.messages[0]).toEqual({ role: 'system', content: 'Be kind.' });
    expect(request.stream).toBe(false);
    expect(request.includeUsage).toBeUndefined();
  });

  it('when the first message is from the assistant, then it is accepted as the API does', () => {
    const request = decodeAnthropicRequest({
      ...minimal,
      messages: [
        { role: 'assistant', content: 'How can I help?' },
        { role: 'user', content: 'Sky colour?' },
      ],
    });
    expect(request.messages.map((m) => m.role)).toEqual(['assistant', 'user']);
  });

  it('when structured output is requested, then it becomes a json_schema response format', () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
    const request = decodeAnthropicRequest({
      ...minimal,
      output_config: { format: { type: 'json_schema', schema } },
    });
    expect(request.responseFormat).toEqual({ type: 'json_schema', name: 'response', schema });
  });

  it('when an image sits inside a tool result, then it follows the results as user content', () => {
    const request = decodeAnthropicRequest({
      ...minimal,
      messages: [
        { role: 'user', content: 'Screenshot please' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'shot', input: {} }] },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 't1',
              content: [
                { type: 'text', text: 'done' },
                { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/' } },
              ],
            },
          ],
        },
      ],
    });
    expect(request.messages.slice(2)).toEqual([
      { role: 'tool', toolCallId: 't1', content: 'done' },
      {
        role: 'user',
        content: [{ type: 'image', url: 'data:image/jpeg;base64,/9j/', mediaType: 'image/jpeg' }],
      },
    ]);
  });

  it.each([
    [
      'max_tokens is missing',
      { model: 'm', messages: [{ role: 'user', content: 'x' }] },
      'max_tokens',
      'Field required',
    ],
    ['messages is empty', { ...minimal, messages: [] }, 'messages', 'at least 1'],
    ['the model is missing', { max_tokens: 5, messages: minimal.messages }, 'model', 'Field required'],
    ['max_tokens is fractional', { ...minimal, max_tokens: 1.5 }, 'max_tokens', 'expected int'],
    ['temperature is above 1', { ...minimal, temperature: 1.5 }, 'temperature', '<= 1'],
    [
      'a role is unknown',
      { ...minimal, messages: [{ role: 'bot', content: 'x' }] },
      'messages.0.role',
      '"user"',
    ],
    [
      'a block type is unknown',
      {
        ...minimal,
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: 'y' },
          { role: 'user', content: [{ type: 'document', source: {} }] },
        ],
      },
      'messages.2.content.0.type',
      '"text", "image", "tool_result"',
    ],
    [
      'a tool_use block is in a user turn',
      {
        ...minimal,
        messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'b', input: {} }] }],
      },
      'messages.0.content.0.type',
      'expected one of',
    ],
    [
      'a text block has no text',
      { ...minimal, messages: [{ role: 'user', content: [{ type: 'text' }] }] },
      'messages.0.content.0.text',
      'Field required',
    ],
    [
      'a text block is empty',
      { ...minimal, messages: [{ role: 'user', content: [{ type: 'text', text: '' }] }] },
      'messages.0.content.0.text',
      'non-empty',
    ],
    [
      'an image has an unsupported media type',
      {
        ...minimal,
        messages: [
          {
            role: 'user',
            content: [{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: 'x' } }],
          },
        ],
      },
      'messages.0.content.0.source.media_type',
      '"image/png"',
    ],
    [
      'a tool_result has no tool_use_id',
      { ...minimal, messages: [{ role: 'user', content: [{ type: 'tool_result', content: 'x' }] }] },
      'messages.0.content.0.tool_use_id',
      'Field required',
    ],
    [
      'a tool name has a dot',
      { ...minimal, tools: [{ name: 'ns.tool', input_schema: { type: 'object' } }] },
      'tools.0.name',
      'pattern',
    ],
    [
      'a tool schema is not an object schema',
      { ...minimal, tools: [{ name: 't', input_schema: { type: 'string' } }] },
      'tools.0.input_schema.type',
      '"object"',
    ],
    [
      'a server tool is declared',
      { ...minimal, tools: [{ type: 'web_search_20250305', name: 'web_search' }] },
      'tools.0.type',
      'server tools are not supported',
    ],
    [
      'tool_choice names a tool that does not exist',
      {
        ...minimal,
        tools: [{ name: 'a', input_schema: { type: 'object' } }],
        tool_choice: { type: 'tool', name: 'b' },
      },
      'tool_choice.name',
      'no tool named "b"',
    ],
    [
      'tool_choice any comes without tools',
      { ...minimal, tool_choice: { type: 'any' } },
      'tool_choice',
      'requires tools',
    ],
    [
      'tool_choice has an unknown type',
      { ...minimal, tool_choice: { type: 'some' } },
      'tool_choice.type',
      '"auto"',
    ],
    ['stop_sequences is a string', { ...minimal, stop_sequences: 'END' }, 'stop_sequences', 'expected array'],
    [
      'content is a number',
      { ...minimal, messages: [{ role: 'user', content: 5 }] },
      'messages.0.content',
      'string or array',
    ],
    [
      'metadata.user_id is a number',
      { ...minimal, metadata: { user_id: 5 } },
      'metadata.user_id',
      'expected string',
    ],
    [
      'a tool_use input is an array',
      {
        ...minimal,
        messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 'b', input: [1] }] }],
      },
      'messages.0.content.0.input',
      'expected object',
    ],
    [
      'a tool_use input holds a non-JSON number',
      {
        ...minimal,
        messages: [
          {
            role: 'assistant',
            content: [{ type: 'tool_use', id: 'a', name: 'b', input: { n: Number.NaN } }],
          },
        ],
      },
      'messages.0.content.0.input',
      'expected object',
    ],
  ])('when %s, then the error names the field', (_, body, param, fragment) => {
    const error = decodeError(body);
    expect(error.code).toBe('invalid_request');
    expect(error.param).toBe(param);
    expect(error.message.startsWith(`${param}: `)).toBe(true);
    expect(error.message).toContain(fragment);
  });

  it('when the body is not an object, then it is rejected without a field', () => {
    const error = decodeError('hello');
    expect(error.code).toBe('invalid_request');
    expect(error.param).toBeUndefined();
  });
});

const response: ChatResponse = {
  id: 'chatcmpl-123',
  model: 'gpt-4o-2024-08-06',
  created: 1_700_000_000,
  content: 'Let me check.',
  toolCalls: [{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' }],
  finishReason: 'tool_calls',
  usage: { inputTokens: 1200, outputTokens: 40, cachedInputTokens: 1000, cacheWriteTokens: 150 },
};

describe('anthropic caller: encoding a response', () => {
  it('when a response with text and a tool call is encoded, then it is a Messages API message', () => {
    expect(anthropicCaller.encodeChatResponse(response, 'claude-sonnet-4-5')).toEqual({
      id: 'msg_chatcmpl-123',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5',
      content: [
        { type: 'text', text: 'Let me check.' },
        { type: 'tool_use', id: 'call_abc', name: 'get_weather', input: { city: 'Paris' } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      // input_tokens excludes cache reads and writes, which Anthropic reports apart.
      usage: {
        input_tokens: 50,
        output_tokens: 40,
        cache_read_input_tokens: 1000,
        cache_creation_input_tokens: 150,
        cache_creation: { ephemeral_5m_input_tokens: 150, ephemeral_1h_input_tokens: 0 },
      },
    });
  });

  it.each([
    ['stop', null, 'end_turn', null],
    ['stop', 'END', 'stop_sequence', 'END'],
    ['length', null, 'max_tokens', null],
    ['content_filter', null, 'refusal', null],
  ] as const)(
    'when the finish reason is %s (sequence %s), then stop_reason is %s',
    (finish, sequence, reason, stopSequence) => {
      const message = anthropicCaller.encodeChatResponse(
        { ...response, toolCalls: [], finishReason: finish, stopSequence: sequence },
        'm',
      );
      expect(message['stop_reason']).toBe(reason);
      expect(message['stop_sequence']).toBe(stopSequence);
    },
  );

  it('when tool arguments are not valid JSON, then input is an empty object rather than a broken message', () => {
    const message = anthropicCaller.encodeChatResponse(
      { ...response, content: null, toolCalls: [{ id: 't', name: 'n', arguments: '{"city": "Par' }] },
      'm',
    );
    expect(message['content']).toEqual([{ type: 'tool_use', id: 't', name: 'n', input: {} }]);
  });

  it('when the answer is empty, then one empty text block is kept', () => {
    const message = anthropicCaller.encodeChatResponse({ ...response, content: '', toolCalls: [] }, 'm');
    expect(message['content']).toEqual([{ type: 'text', text: '' }]);
  });
});

function encodeAll(events: StreamEvent[], usage: Usage): string {
  const encoder = new AnthropicStreamEncoder('claude-haiku-4-5');
  return events.map((event) => encoder.encode(event)).join('') + encoder.end(usage);
}

describe('anthropic caller: stream encoding', () => {
  it('when text and tool calls interleave, then blocks open and close in order with consecutive indexes', () => {
    const usage = { inputTokens: 30, outputTokens: 12, cachedInputTokens: 10 };
    const frames = readSse(
      encodeAll(
        [
          { type: 'start', id: 'msg_01', model: 'upstream-model', created: 1 },
          { type: 'usage', usage: { inputTokens: 30, cachedInputTokens: 10 } },
          { type: 'text', delta: 'Checking ' },
          { type: 'text', delta: 'both.' },
          { type: 'tool_call_start', index: 0, id: 'call_a', name: 'weather' },
          { type: 'tool_call_delta', index: 0, argumentsDelta: '{"city":' },
          { type: 'tool_call_delta', index: 0, argumentsDelta: '"Paris"}' },
          { type: 'tool_call_start', index: 1, id: 'call_b', name: 'time' },
          { type: 'tool_call_delta', index: 1, argumentsDelta: '{}' },
          { type: 'text', delta: 'Done.' },
          { type: 'finish', finishReason: 'tool_calls' },
          { type: 'usage', usage: { outputTokens: 12 } },
        ],
        usage,
      ),
    );

    expect(frames.map((f) => [f.event, f.data['type'], f.data['index']])).toEqual([
      ['message_start', 'message_start', undefined],
      ['content_block_start', 'content_block_start', 0],
      ['content_block_delta', 'content_block_delta', 0],
      ['content_block_delta', 'content_block_delta', 0],
      ['content_block_stop', 'content_block_stop', 0],
      ['content_block_start', 'content_block_start', 1],
      ['content_block_delta', 'content_block_delta', 1],
      ['content_block_delta', 'content_block_delta', 1],
      ['content_block_stop', 'content_block_stop', 1],
      ['content_block_start', 'content_block_start', 2],
      ['content_block_delta', 'content_block_delta', 2],
      ['content_block_stop', 'content_block_stop', 2],
      ['content_block_start', 'content_block_start', 3],
      ['content_block_delta', 'content_block_delta', 3],
      ['content_block_stop', 'content_block_stop', 3],
      ['message_delta', 'message_delta', undefined],
      ['message_stop', 'message_stop', undefined],
    ]);
    expect(frames[0]?.data).toEqual({
      type: 'message_start',
      message: {
        id: 'msg_01',
        type: 'message',
        role: 'assistant',
        model: 'claude-haiku-4-5',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: 20,
          output_tokens: 0,
          cache_read_input_tokens: 10,
          cache_creation_input_tokens: 0,
        },
      },
    });
    expect(frames[5]?.data['content_block']).toEqual({
      type: 'tool_use',
      id: 'call_a',
      name: 'weather',
      input: {},
    });
    expect(frames[6]?.data['delta']).toEqual({ type: 'input_json_delta', partial_json: '{"city":' });
    expect(frames[12]?.data['content_block']).toEqual({ type: 'text', text: '' });
    expect(frames[15]?.data).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: {
        input_tokens: 20,
        output_tokens: 12,
        cache_read_input_tokens: 10,
        cache_creation_input_tokens: 0,
      },
    });
  });

  it('when a tool call delta arrives after another call started, then it still targets its own block', () => {
    const frames = readSse(
      encodeAll(
        [
          { type: 'tool_call_start', index: 0, id: 'a', name: 'x' },
          { type: 'tool_call_start', index: 1, id: 'b', name: 'y' },
          { type: 'tool_call_delta', index: 0, argumentsDelta: '{}' },
          { type: 'finish', finishReason: 'tool_calls' },
        ],
        { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 },
      ),
    );
    const late = frames.find((f) => f.data['type'] === 'content_block_delta');
    expect(late?.data['index']).toBe(0);
  });

  it('when the stream stops on a stop sequence, then message_delta names it', () => {
    const frames = readSse(
      encodeAll(
        [
          { type: 'text', delta: 'a' },
          { type: 'finish', finishReason: 'stop', stopSequence: 'END' },
        ],
        { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 },
      ),
    );
    expect(frames.at(-2)?.data['delta']).toEqual({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
  });

  it('when nothing but the end arrives, then message_start still precedes message_delta and carries the usage', () => {
    const frames = readSse(encodeAll([], { inputTokens: 9, outputTokens: 0, cachedInputTokens: 0 }));
    expect(frames.map((f) => f.event)).toEqual(['message_start', 'message_delta', 'message_stop']);
    const message = frames[0]?.data['message'];
    expect(message).toMatchObject({ usage: { input_tokens: 9 } });
    expect(String((message as { id?: unknown } | undefined)?.id)).toMatch(/^msg_/);
  });

  it('when an error is reported mid-stream, then it is an Anthropic error event', () => {
    const encoder = anthropicCaller.createStreamEncoder('m', { includeUsage: true });
    expect(encoder.error('Upstream went away', 'api_error')).toBe(
      'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"Upstream went away"}}\n\n',
    );
  });
});

describe('the anthropic-beta header', () => {
  it('when betas come in one header, in repeated headers or with spaces, then they become one list without repeats', () => {
    expect(decodeAnthropicBetas('a-2025-01-01, b-2025-02-02')).toEqual(['a-2025-01-01', 'b-2025-02-02']);
    expect(decodeAnthropicBetas(['a-2025-01-01', 'b-2025-02-02,a-2025-01-01'])).toEqual([
      'a-2025-01-01',
      'b-2025-02-02',
    ]);
    expect(decodeAnthropicBetas(' , ')).toBeUndefined();
    expect(decodeAnthropicBetas(undefined)).toBeUndefined();
  });

  it('when a name is not a beta name, then it is an invalid_request naming the header', () => {
    expect(() => decodeAnthropicBetas('ok-2025-01-01,Bearer sk-123')).toThrow(
      expect.objectContaining({ code: 'invalid_request', param: 'anthropic-beta' }),
    );
    expect(() => decodeAnthropicBetas(Array.from({ length: 33 }, (_, i) => `b${i}`).join(','))).toThrow(
      /up to 32/,
    );
  });

  it('when the request is decoded with the header, then the canonical request carries the betas', () => {
    const body = { model: 'claude', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] };
    expect(anthropicCaller.decodeChatRequest(body, { 'anthropic-beta': 'x-2025' }).anthropicBetas).toEqual([
      'x-2025',
    ]);
    expect(anthropicCaller.decodeChatRequest(body).anthropicBetas).toBeUndefined();
  });
});

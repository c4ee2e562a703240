import { AppError } from '@flowloom/errors';
import { describe, expect, it } from 'vitest';
import { type ChatRequest, emptyUsage, mergeUsage, type StreamEvent } from '../../canonical.js';
import { type SseMessage, SseParser } from '../../sse.js';
import { GEMINI_TOOL_RESPONSE, GEMINI_TOOL_STREAM } from './fixtures.js';
import { GeminiStreamDecoder, geminiProvider } from './provider.js';
import { attachSignature, SKIP_SIGNATURE_VALIDATION } from './tool-ids.js';

const base: ChatRequest = {
  model: 'alias',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
  stream: false,
};

const conversation: ChatRequest = {
  model: 'alias',
  stream: true,
  maxTokens: 300,
  temperature: 0.4,
  topP: 0.95,
  stop: ['END'],
  seed: 11,
  user: 'ignored-by-gemini',
  parallelToolCalls: false,
  messages: [
    { role: 'system', content: 'Be brief.' },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Weather in Paris? Map:' },
        { type: 'image', url: 'data:image/webp;base64,UklGRg==', mediaType: 'image/webp' },
        { type: 'image', url: 'https://example.com/map.png', mediaType: 'image/png' },
        { type: 'text', text: '' },
      ],
    },
    {
      role: 'assistant',
      content: 'Checking.',
      toolCalls: [
        { id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' },
        { id: 'call_2', name: 'time', arguments: 'oops' },
      ],
    },
    { role: 'tool', toolCallId: 'call_1', content: '{"temp":18}' },
    { role: 'tool', toolCallId: 'call_2', content: '09:00' },
    { role: 'user', content: [{ type: 'text', text: 'Thanks' }] },
  ],
  tools: [
    {
      name: 'weather',
      description: 'Weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    },
  ],
  toolChoice: { type: 'tool', name: 'weather' },
  responseFormat: { type: 'json_schema', name: 'r', schema: { type: 'object', additionalProperties: false } },
};

describe('gemini provider: encoding a request', () => {
  it('when a conversation with tools is encoded, then roles, parts, tool results and config follow the Gemini API', () => {
    expect(geminiProvider.encodeChatRequest(conversation, 'gemini-2.5-flash')).toEqual({
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      contents: [
        {
          role: 'user',
          parts: [
            { text: 'Weather in Paris? Map:' },
            { inlineData: { mimeType: 'image/webp', data: 'UklGRg==' } },
            { fileData: { fileUri: 'https://example.com/map.png', mimeType: 'image/png' } },
          ],
        },
        {
          role: 'model',
          parts: [
            { text: 'Checking.' },
            { functionCall: { name: 'weather', args: { city: 'Paris' } } },
            { functionCall: { name: 'time', args: {} } },
          ],
        },
        {
          role: 'user',
          parts: [
            // A JSON object result goes in as is; anything else is wrapped as { output }.
            { functionResponse: { name: 'weather', response: { temp: 18 } } },
            { functionResponse: { name: 'time', response: { output: '09:00' } } },
            { text: 'Thanks' },
          ],
        },
      ],
      tools: [
        {
          functionDeclarations: [
            {
              name: 'weather',
              description: 'Weather',
              parametersJsonSchema: { type: 'object', properties: { city: { type: 'string' } } },
            },
          ],
        },
      ],
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['weather'] } },
      generationConfig: {
        maxOutputTokens: 300,
        temperature: 0.4,
        topP: 0.95,
        stopSequences: ['END'],
        seed: 11,
        responseMimeType: 'application/json',
        responseJsonSchema: { type: 'object', additionalProperties: false },
      },
    });
  });

  it('when the model is Gemini 3 and the calls came from elsewhere, then the first call of each turn gets the documented placeholder signature', () => {
    const body = geminiProvider.encodeChatRequest(conversation, 'gemini-3-pro-preview');
    expect(body['contents']).toMatchObject([
      {},
      {
        parts: [
          { text: 'Checking.' },
          { functionCall: { name: 'weather' }, thoughtSignature: SKIP_SIGNATURE_VALIDATION },
          { functionCall: { name: 'time' } },
        ],
      },
      {},
    ]);
    const second = (body['contents'] as { parts: Record<string, unknown>[] }[])[1]?.parts[2];
    expect(second?.['thoughtSignature']).toBeUndefined();
  });

  it('when a call carries a Gemini signature in its id, then the signature goes back on its part', () => {
    const signed = attachSignature('call_r_0', 'CiQBcsja+/8=');
    const body = geminiProvider.encodeChatRequest(
      {
        ...base,
        messages: [
          ...base.messages,
          { role: 'assistant', content: null, toolCalls: [{ id: signed, name: 'weather', arguments: '{}' }] },
          { role: 'tool', toolCallId: signed, content: 'sunny', isError: false },
        ],
      },
      'gemini-3-flash',
    );
    expect(body['contents']).toEqual([
      { role: 'user', parts: [{ text: 'Hi' }] },
      {
        role: 'model',
        parts: [{ functionCall: { name: 'weather', args: {} }, thoughtSignature: 'CiQBcsja+/8=' }],
      },
      { role: 'user', parts: [{ functionResponse: { name: 'weather', response: { output: 'sunny' } } }] },
    ]);
  });

  it('when a tool failed, then its result is sent under the error key', () => {
    const body = geminiProvider.encodeChatRequest(
      {
        ...base,
        messages: [
          ...base.messages,
          { role: 'assistant', content: null, toolCalls: [{ id: 'c', name: 'f', arguments: '{}' }] },
          { role: 'tool', toolCallId: 'c', content: '{"reason":"timeout"}', isError: true },
        ],
      },
      'gemini-2.5-flash',
    );
    expect(body['contents']).toMatchObject([
      {},
      {},
      { parts: [{ functionResponse: { name: 'f', response: { error: '{"reason":"timeout"}' } } }] },
    ]);
  });

  it('when a tool result refers to an unknown call, then the request is rejected naming the message', () => {
    let caught: unknown;
    try {
      geminiProvider.encodeChatRequest(
        { ...base, messages: [...base.messages, { role: 'tool', toolCallId: 'nope', content: 'x' }] },
        'gemini-2.5-flash',
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('invalid_request');
    expect((caught as AppError).param).toBe('messages.1');
  });

  it.each([
    [{ type: 'auto' }, { mode: 'AUTO' }],
    [{ type: 'none' }, { mode: 'NONE' }],
    [{ type: 'required' }, { mode: 'ANY' }],
  ] as const)('when tool choice is %j, then functionCallingConfig is %j', (choice, config) => {
    const body = geminiProvider.encodeChatRequest(
      { ...base, tools: [{ name: 't', parameters: { type: 'object' } }], toolChoice: choice },
      'gemini-2.5-flash',
    );
    expect(body['toolConfig']).toEqual({ functionCallingConfig: config });
  });

  it('when plain JSON mode is asked for, then only the JSON MIME type is set', () => {
    const body = geminiProvider.encodeChatRequest(
      { ...base, responseFormat: { type: 'json_object' } },
      'gemini-2.5-flash',
    );
    expect(body['generationConfig']).toEqual({ responseMimeType: 'application/json' });
  });

  it('when nothing is configured, then the body holds only contents', () => {
    expect(geminiProvider.encodeChatRequest(base, 'gemini-2.5-flash')).toEqual({
      contents: [{ role: 'user', parts: [{ text: 'Hi' }] }],
    });
  });
});

describe('gemini provider: decoding a response', () => {
  it('when a response with thoughts, text and calls is decoded, then thoughts are output tokens and cached tokens are input', () => {
    expect(geminiProvider.decodeChatResponse(GEMINI_TOOL_RESPONSE)).toEqual({
      id: 'mcDJaP3sA6ey1dkPqp7fkAY',
      model: 'gemini-2.5-flash',
      created: expect.any(Number),
      content: 'Je regarde la météo à Zürich ☀️ pour vous.',
      toolCalls: [
        {
          id: attachSignature('call_mcDJaP3sA6ey1dkPqp7fkAY_0', 'CiQBcsjafHc+Lk2f/8xA3Q=='),
          name: 'get_weather',
          arguments: '{"city":"Zürich","unit":"celsius"}',
        },
        { id: 'call_mcDJaP3sA6ey1dkPqp7fkAY_1', name: 'get_time', arguments: '{"tz":"Europe/Zurich"}' },
      ],
      finishReason: 'tool_calls',
      usage: { inputTokens: 1510, outputTokens: 42 + 98, cachedInputTokens: 1024, reasoningTokens: 98 },
    });
  });

  it('when the same response is decoded twice, then the tool-call ids are the same (stable)', () => {
    const first = geminiProvider.decodeChatResponse(GEMINI_TOOL_RESPONSE);
    const second = geminiProvider.decodeChatResponse(structuredClone(GEMINI_TOOL_RESPONSE));
    expect(second.toolCalls.map((c) => c.id)).toEqual(first.toolCalls.map((c) => c.id));
  });

  it('when tool-use prompt tokens are reported, then they count as input', () => {
    const response = geminiProvider.decodeChatResponse({
      ...GEMINI_TOOL_RESPONSE,
      usageMetadata: {
        promptTokenCount: 10,
        toolUsePromptTokenCount: 5,
        candidatesTokenCount: 3,
        totalTokenCount: 18,
      },
    });
    expect(response.usage).toEqual({ inputTokens: 15, outputTokens: 3, cachedInputTokens: 0 });
  });

  it.each([
    ['STOP', 'stop'],
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['MALFORMED_FUNCTION_CALL', 'error'],
    ['OTHER', 'error'],
    ['FINISH_REASON_UNSPECIFIED', 'stop'],
  ])('when finishReason is %s without calls, then the finish reason is %s', (reason, finish) => {
    const response = geminiProvider.decodeChatResponse({
      candidates: [{ content: { parts: [{ text: 'x' }], role: 'model' }, finishReason: reason }],
      modelVersion: 'gemini-2.5-flash',
      responseId: 'r',
    });
    expect(response.finishReason).toBe(finish);
  });

  it('when the prompt was blocked, then there is no content and the finish reason is content_filter', () => {
    const response = geminiProvider.decodeChatResponse({
      promptFeedback: { blockReason: 'SAFETY' },
      usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 },
      modelVersion: 'gemini-2.5-flash',
      responseId: 'r',
    });
    expect(response).toMatchObject({ content: null, toolCalls: [], finishReason: 'content_filter' });
    expect(response.usage.inputTokens).toBe(8);
  });

  it('when the body is malformed, then it is an upstream_bad_response naming the field', () => {
    expect(() => geminiProvider.decodeChatResponse({ candidates: 'nope' })).toThrowError(
      /Gemini sent a malformed response at candidates/,
    );
  });
});

function decodeInPieces(text: string, cuts: number[]): { events: StreamEvent[]; done: boolean } {
  const bytes = new TextEncoder().encode(text);
  const parser = new SseParser();
  const decoder = geminiProvider.createStreamDecoder();
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

describe('gemini provider: decoding a stream', () => {
  const partial = { inputTokens: 1510, outputTokens: 0, cachedInputTokens: 1024 };
  const expected: StreamEvent[] = [
    { type: 'start', id: 'mcDJaP3sA6ey1dkPqp7fkAY', model: 'gemini-2.5-flash', created: expect.any(Number) },
    { type: 'usage', usage: partial },
    { type: 'text', delta: 'Je regarde la météo à Zürich ' },
    { type: 'usage', usage: partial },
    { type: 'text', delta: '☀️ pour vous.' },
    { type: 'usage', usage: partial },
    {
      type: 'tool_call_start',
      index: 0,
      id: attachSignature('call_mcDJaP3sA6ey1dkPqp7fkAY_0', 'CiQBcsjafHc+Lk2f/8xA3Q=='),
      name: 'get_weather',
    },
    { type: 'tool_call_delta', index: 0, argumentsDelta: '{"city":"Zürich","unit":"celsius"}' },
    { type: 'tool_call_start', index: 1, id: 'call_mcDJaP3sA6ey1dkPqp7fkAY_1', name: 'get_time' },
    { type: 'tool_call_delta', index: 1, argumentsDelta: '{"tz":"Europe/Zurich"}' },
    { type: 'finish', finishReason: 'tool_calls' },
    {
      type: 'usage',
      usage: { inputTokens: 1510, outputTokens: 140, cachedInputTokens: 1024, reasoningTokens: 98 },
    },
  ];

  it('when the recorded transcript arrives whole, then it decodes to the canonical sequence and ends done', () => {
    const { events, done } = decodeInPieces(GEMINI_TOOL_STREAM, []);
    expect(events).toEqual(expected);
    expect(done).toBe(true);
  });

  it('when the transcript is split at every byte boundary (CRLF pairs included), then the events are the same', () => {
    const length = new TextEncoder().encode(GEMINI_TOOL_STREAM).length;
    for (let size = 1; size <= 97; size += 8) {
      const cuts: number[] = [];
      for (let at = size; at < length; at += size) cuts.push(at);
      expect(decodeInPieces(GEMINI_TOOL_STREAM, cuts).events).toEqual(expected);
    }
  });

  it('when the transcript is split at random places, then the events are the same', () => {
    let seed = 11;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const length = new TextEncoder().encode(GEMINI_TOOL_STREAM).length;
    for (let round = 0; round < 50; round++) {
      const cuts = Array.from({ length: 10 }, () => Math.floor(random() * length)).sort((a, b) => a - b);
      expect(decodeInPieces(GEMINI_TOOL_STREAM, cuts).events).toEqual(expected);
    }
  });

  it('when the stream usage is folded, then it equals the non-streamed usage and the ids match too', () => {
    const { events } = decodeInPieces(GEMINI_TOOL_STREAM, []);
    const total = events.reduce(
      (usage, event) => (event.type === 'usage' ? mergeUsage(usage, event.usage) : usage),
      emptyUsage(),
    );
    const whole = geminiProvider.decodeChatResponse(GEMINI_TOOL_RESPONSE);
    expect(total).toEqual(whole.usage);
    const ids = events.flatMap((event) => (event.type === 'tool_call_start' ? [event.id] : []));
    expect(ids).toEqual(whole.toolCalls.map((call) => call.id));
  });

  it('when the stream is cut before the finishing chunk, then the decoder is not done', () => {
    const frames = GEMINI_TOOL_STREAM.split('\r\n\r\n');
    expect(decodeInPieces(frames.slice(0, 3).join('\r\n\r\n') + '\r\n\r\n', []).done).toBe(false);
  });

  it('when an error chunk arrives, then the decoder throws upstream_error with the status', () => {
    const decoder = new GeminiStreamDecoder();
    let caught: unknown;
    try {
      decoder.push({
        event: undefined,
        data: '{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}',
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('upstream_error');
    expect((caught as AppError).message).toContain('The model is overloaded.');
    expect((caught as AppError).details).toEqual({ upstreamType: 'UNAVAILABLE' });
  });

  it('when a chunk is not JSON, then it is an upstream_bad_response', () => {
    expect(() => new GeminiStreamDecoder().push({ event: undefined, data: '{"candidates":[' })).toThrowError(
      /not JSON/,
    );
  });
});

describe('gemini provider: decoding errors', () => {
  it('when the body is the documented error shape, then its status and message are read', () => {
    expect(
      geminiProvider.decodeError(400, {
        error: {
          code: 400,
          message: 'API key not valid. Please pass a valid API key.',
          status: 'INVALID_ARGUMENT',
        },
      }),
    ).toEqual({ type: 'INVALID_ARGUMENT', message: 'API key not valid. Please pass a valid API key.' });
  });

  it('when the error is wrapped in an array, then it is still read', () => {
    expect(
      geminiProvider.decodeError(429, [
        { error: { code: 429, message: 'Resource has been exhausted', status: 'RESOURCE_EXHAUSTED' } },
      ]),
    ).toEqual({ type: 'RESOURCE_EXHAUSTED', message: 'Resource has been exhausted' });
  });

  it.each([
    [503, 'Service Unavailable', 'UNAVAILABLE', 'Service Unavailable'],
    [404, null, 'NOT_FOUND', 'Gemini returned HTTP 404.'],
    [502, {}, 'INTERNAL', 'Gemini returned HTTP 502.'],
  ])(
    'when status %i comes with an undocumented body, then the status names the type',
    (status, body, type, message) => {
      expect(geminiProvider.decodeError(status, body)).toEqual({ type, message });
    },
  );
});

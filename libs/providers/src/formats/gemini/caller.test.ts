import { AppError } from '@flowloom/errors';
import { describe, expect, it } from 'vitest';
import type { ChatResponse, StreamEvent, Usage } from '../../canonical.js';
import { SseParser } from '../../sse.js';
import { decodeGeminiRequest, GeminiStreamEncoder, geminiCaller, parseGeminiPath } from './caller.js';
import { attachSignature } from './tool-ids.js';

const route = { model: 'gemini-2.5-flash', stream: false };
const hello = { contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] };

function rejection(body: unknown): AppError {
  try {
    decodeGeminiRequest(body, route);
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected the request to be rejected');
}

describe('gemini caller: decoding generateContent requests', () => {
  const full = {
    systemInstruction: { parts: [{ text: 'You are a travel agent.' }, { text: 'Be brief.' }] },
    contents: [
      {
        role: 'user',
        parts: [
          { text: 'Weather and time in Zürich? Map:' },
          { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } },
        ],
      },
      {
        role: 'model',
        parts: [
          { text: 'Thinking…', thought: true },
          { text: 'Checking.' },
          {
            functionCall: { name: 'get_weather', args: { city: 'Zürich' } },
            thoughtSignature: 'CiQBcsja+/8=',
          },
          { functionCall: { name: 'get_time', args: {} } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'get_time', response: { time: '09:00' } } },
          { functionResponse: { name: 'get_weather', response: { temp: 18 } } },
          { text: 'Thanks' },
        ],
      },
    ],
    tools: [
      {
        functionDeclarations: [
          {
            name: 'get_weather',
            description: 'Weather',
            parameters: {
              type: 'OBJECT',
              properties: { city: { type: 'STRING', nullable: true }, days: { type: 'INTEGER' } },
              required: ['city'],
              propertyOrdering: ['city', 'days'],
            },
          },
          { name: 'get_time', parametersJsonSchema: { type: 'object', properties: {} } },
        ],
      },
    ],
    toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } },
    generationConfig: {
      maxOutputTokens: 800,
      temperature: 1.5,
      topP: 0.9,
      topK: 40,
      stopSequences: ['END'],
      seed: 7,
      responseMimeType: 'application/json',
      responseSchema: { type: 'OBJECT', properties: { answer: { type: 'STRING' } } },
    },
    safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_NONE' }],
  };

  const weatherId = attachSignature('call_h1_2', 'CiQBcsja+/8=');
  const expectedFull = {
    model: 'gemini-2.5-flash',
    stream: true,
    includeUsage: true,
    maxTokens: 800,
    temperature: 1.5,
    topP: 0.9,
    stop: ['END'],
    seed: 7,
    responseFormat: {
      type: 'json_schema',
      name: 'response',
      schema: { type: 'object', properties: { answer: { type: 'string' } } },
    },
    toolChoice: { type: 'tool', name: 'get_weather' },
    tools: [
      {
        name: 'get_weather',
        description: 'Weather',
        parameters: {
          type: 'object',
          properties: { city: { type: ['string', 'null'] }, days: { type: 'integer' } },
          required: ['city'],
        },
      },
      { name: 'get_time', parameters: { type: 'object', properties: {} } },
    ],
    messages: [
      { role: 'system', content: 'You are a travel agent.' },
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Weather and time in Zürich? Map:' },
          { type: 'image', url: 'data:image/png;base64,iVBORw0KGgo=', mediaType: 'image/png' },
        ],
      },
      {
        role: 'assistant',
        content: 'Checking.',
        toolCalls: [
          { id: weatherId, name: 'get_weather', arguments: '{"city":"Zürich"}' },
          { id: 'call_h1_3', name: 'get_time', arguments: '{}' },
        ],
      },
      // Responses are matched by name, whatever their order.
      { role: 'tool', toolCallId: 'call_h1_3', content: '{"time":"09:00"}' },
      { role: 'tool', toolCallId: weatherId, content: '{"temp":18}' },
      { role: 'user', content: [{ type: 'text', text: 'Thanks' }] },
    ],
  };

  it('when a full request is decoded, then every field lands in the canonical request', () => {
    expect(decodeGeminiRequest(full, { model: 'models/gemini-2.5-flash', stream: true })).toEqual(
      expectedFull,
    );
  });

  it('when the same request uses proto snake_case names, then it decodes the same', () => {
    const snake = {
      system_instruction: { parts: [{ text: 'You are a travel agent.' }, { text: 'Be brief.' }] },
      contents: [
        {
          role: 'user',
          parts: [
            { text: 'Weather and time in Zürich? Map:' },
            { inline_data: { mime_type: 'image/png', data: 'iVBORw0KGgo=' } },
          ],
        },
        {
          role: 'model',
          parts: [
            { text: 'Thinking…', thought: true },
            { text: 'Checking.' },
            {
              function_call: { name: 'get_weather', args: { city: 'Zürich' } },
              thought_signature: 'CiQBcsja+/8=',
            },
            { function_call: { name: 'get_time', args: {} } },
          ],
        },
        {
          role: 'user',
          parts: [
            { function_response: { name: 'get_time', response: { time: '09:00' } } },
            { function_response: { name: 'get_weather', response: { temp: 18 } } },
            { text: 'Thanks' },
          ],
        },
      ],
      tools: [
        {
          function_declarations: [
            {
              name: 'get_weather',
              description: 'Weather',
              parameters: {
                type: 'OBJECT',
                properties: { city: { type: 'STRING', nullable: true }, days: { type: 'INTEGER' } },
                required: ['city'],
                property_ordering: ['city', 'days'],
              },
            },
            { name: 'get_time', parameters_json_schema: { type: 'object', properties: {} } },
          ],
        },
      ],
      tool_config: { function_calling_config: { mode: 'ANY', allowed_function_names: ['get_weather'] } },
      generation_config: {
        max_output_tokens: 800,
        temperature: 1.5,
        top_p: 0.9,
        top_k: 40,
        stop_sequences: ['END'],
        seed: 7,
        response_mime_type: 'application/json',
        response_schema: { type: 'OBJECT', properties: { answer: { type: 'STRING' } } },
      },
    };
    expect(decodeGeminiRequest(snake, { model: 'gemini-2.5-flash', stream: true })).toEqual(expectedFull);
  });

  it('when function responses carry the ids of their calls, then they are matched by id', () => {
    const request = decodeGeminiRequest(
      {
        contents: [
          { role: 'user', parts: [{ text: 'two lookups' }] },
          {
            role: 'model',
            parts: [
              { functionCall: { id: 'fc-1', name: 'lookup', args: { q: 'a' } } },
              { functionCall: { id: 'fc-2', name: 'lookup', args: { q: 'b' } } },
            ],
          },
          {
            role: 'user',
            parts: [
              { functionResponse: { id: 'fc-2', name: 'lookup', response: { r: 'B' } } },
              { functionResponse: { id: 'fc-1', name: 'lookup', response: { r: 'A' } } },
            ],
          },
        ],
      },
      route,
    );
    expect(request.messages.slice(2)).toEqual([
      { role: 'tool', toolCallId: 'fc-2', content: '{"r":"B"}' },
      { role: 'tool', toolCallId: 'fc-1', content: '{"r":"A"}' },
    ]);
  });

  it('when parallel calls share a name and carry no ids, then responses pair with calls in order', () => {
    const request = decodeGeminiRequest(
      {
        contents: [
          { role: 'user', parts: [{ text: 'two lookups' }] },
          {
            role: 'model',
            parts: [
              { functionCall: { name: 'lookup', args: { q: 'a' } } },
              { functionCall: { name: 'lookup', args: { q: 'b' } } },
            ],
          },
          {
            role: 'user',
            parts: [
              { functionResponse: { name: 'lookup', response: { r: 'A' } } },
              { functionResponse: { name: 'lookup', response: { r: 'B' } } },
            ],
          },
        ],
      },
      route,
    );
    expect(request.messages.slice(2).map((m) => (m.role === 'tool' ? m.toolCallId : m.role))).toEqual([
      'call_h1_0',
      'call_h1_1',
    ]);
  });

  it.each([
    [{ functionCallingConfig: { mode: 'AUTO' } }, { type: 'auto' }],
    [{ functionCallingConfig: { mode: 'NONE' } }, { type: 'none' }],
    [{ functionCallingConfig: { mode: 'ANY' } }, { type: 'required' }],
    [{ functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['a', 'b'] } }, { type: 'required' }],
    [{ functionCallingConfig: { mode: 'VALIDATED' } }, { type: 'auto' }],
    [{}, undefined],
  ])('when toolConfig is %j, then the tool choice is %j', (toolConfig, choice) => {
    expect(decodeGeminiRequest({ ...hello, toolConfig }, route).toolChoice).toEqual(choice);
  });

  it.each([
    [{ responseMimeType: 'application/json' }, { type: 'json_object' }],
    [
      {
        responseMimeType: 'application/json',
        responseJsonSchema: { type: 'object', additionalProperties: false },
      },
      { type: 'json_schema', name: 'response', schema: { type: 'object', additionalProperties: false } },
    ],
    [{ responseMimeType: 'text/plain' }, undefined],
  ])('when generationConfig is %j, then the response format is %j', (generationConfig, format) => {
    expect(decodeGeminiRequest({ ...hello, generationConfig }, route).responseFormat).toEqual(format);
  });

  it('when a content has no role, then it is a user turn, as in single-turn requests', () => {
    expect(decodeGeminiRequest({ contents: [{ parts: [{ text: 'hi' }] }] }, route).messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
    ]);
  });

  it.each([
    ['contents is missing', {}, 'contents', 'Field required'],
    ['contents is empty', { contents: [] }, 'contents', 'at least 1'],
    ['a content has no parts', { contents: [{ role: 'user', parts: [] }] }, 'contents.0.parts', 'at least 1'],
    [
      'a role is unknown',
      { contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] },
      'contents.0.role',
      'user, model',
    ],
    ['a part is empty', { contents: [{ parts: [{ text: 'a' }, {}] }] }, 'contents.0.parts.1', 'one of text'],
    [
      'a part holds two kinds of data',
      { contents: [{ parts: [{ text: 'a', inlineData: { mimeType: 'image/png', data: 'x' } }] }] },
      'contents.0.parts.0',
      'text and inlineData',
    ],
    [
      'inline data is audio',
      { contents: [{ parts: [{ inlineData: { mimeType: 'audio/mp3', data: 'x' } }] }] },
      'contents.0.parts.0.inlineData.mimeType',
      'only images',
    ],
    [
      'inline data has no mimeType',
      { contents: [{ parts: [{ inline_data: { data: 'x' } }] }] },
      'contents.0.parts.0.inlineData.mimeType',
      'Field required',
    ],
    [
      'code execution output is sent',
      { contents: [{ parts: [{ executableCode: { language: 'PYTHON', code: '1' } }] }] },
      'contents.0.parts.0.executableCode',
      'not supported',
    ],
    [
      'a function response has no preceding call',
      { contents: [{ role: 'user', parts: [{ functionResponse: { name: 'f', response: {} } }] }] },
      'contents.0.parts.0.functionResponse.name',
      'no unanswered functionCall named "f"',
    ],
    [
      'a function call is in a user turn',
      { contents: [{ role: 'user', parts: [{ functionCall: { name: 'f', args: {} } }] }] },
      'contents.0.parts.0.functionCall',
      'model turn',
    ],
    [
      'a built-in tool is declared',
      { ...hello, tools: [{ googleSearch: {} }] },
      'tools.0.googleSearch',
      'built-in Gemini tools',
    ],
    [
      'a function name has a space',
      { ...hello, tools: [{ functionDeclarations: [{ name: 'get weather' }] }] },
      'tools.0.functionDeclarations.0.name',
      'must start with a letter',
    ],
    [
      'both parameter forms are given',
      {
        ...hello,
        tools: [{ functionDeclarations: [{ name: 'f', parameters: {}, parametersJsonSchema: {} }] }],
      },
      'tools.0.functionDeclarations.0.parametersJsonSchema',
      'mutually exclusive',
    ],
    [
      'two candidates are asked for',
      { ...hello, generationConfig: { candidateCount: 2 } },
      'generationConfig.candidateCount',
      'one candidate',
    ],
    [
      'maxOutputTokens is zero',
      { ...hello, generationConfig: { maxOutputTokens: 0 } },
      'generationConfig.maxOutputTokens',
      '>= 1',
    ],
    [
      'temperature is above 2',
      { ...hello, generationConfig: { temperature: 3 } },
      'generationConfig.temperature',
      '<= 2',
    ],
    [
      'more than five stop sequences are given',
      { ...hello, generationConfig: { stopSequences: ['1', '2', '3', '4', '5', '6'] } },
      'generationConfig.stopSequences',
      '<= 5',
    ],
    [
      'an enum MIME type is asked for',
      { ...hello, generationConfig: { responseMimeType: 'text/x.enum' } },
      'generationConfig.responseMimeType',
      'text/plain or application/json',
    ],
    [
      'a schema comes without the JSON MIME type',
      { ...hello, generationConfig: { responseSchema: { type: 'STRING' } } },
      'generationConfig.responseMimeType',
      'requires application/json',
    ],
    [
      'a function calling mode is unknown',
      { ...hello, toolConfig: { functionCallingConfig: { mode: 'SOMETIMES' } } },
      'toolConfig.functionCallingConfig.mode',
      '"AUTO"',
    ],
    [
      'a cached content is referenced',
      { ...hello, cachedContent: 'cachedContents/abc' },
      'cachedContent',
      'cannot be used',
    ],
  ])('when %s, then the error names the field', (_, body, param, fragment) => {
    const error = rejection(body);
    expect(error.code).toBe('invalid_request');
    expect(error.param).toBe(param);
    expect(error.message.startsWith(`${param}: `)).toBe(true);
    expect(error.message).toContain(fragment);
  });

  it('when the caller format reads the model from the body, then the models/ prefix is dropped and stream defaults off', () => {
    const request = geminiCaller.decodeChatRequest({ ...hello, model: 'models/gemini-2.5-pro' });
    expect(request.model).toBe('gemini-2.5-pro');
    expect(request.stream).toBe(false);
    expect(geminiCaller.decodeChatRequest({ ...hello, model: 'gemini-2.5-pro', stream: true }).stream).toBe(
      true,
    );
  });

  it('when the caller format gets no model, then the error names model', () => {
    expect(() => geminiCaller.decodeChatRequest(hello)).toThrowError(/^model: /);
  });

  it.each([
    ['/v1beta/models/gemini-2.5-flash:generateContent', { model: 'gemini-2.5-flash', stream: false }],
    ['/v1beta/models/gemini-2.5-flash:streamGenerateContent', { model: 'gemini-2.5-flash', stream: true }],
    ['/v1/models/tuned%2Fmodel:generateContent', { model: 'tuned/model', stream: false }],
    ['/v1beta/models/gemini-2.5-flash:countTokens', undefined],
    ['/v1beta/models/%E0%A4%A:generateContent', undefined],
  ])('when the path is %s, then the route is %j', (path, expected) => {
    expect(parseGeminiPath(path)).toEqual(expected);
  });
});

const response: ChatResponse = {
  id: 'chatcmpl-9',
  model: 'gpt-4o',
  created: 1,
  content: 'Let me look.',
  toolCalls: [
    { id: attachSignature('call_x_0', 'CiQB+/8='), name: 'get_weather', arguments: '{"city":"Paris"}' },
    { id: 'call_abc', name: 'get_time', arguments: 'not json' },
  ],
  finishReason: 'tool_calls',
  usage: { inputTokens: 900, outputTokens: 60, cachedInputTokens: 512 },
};

describe('gemini caller: encoding a response', () => {
  it('when a response with text and calls is encoded, then it is a GenerateContentResponse', () => {
    expect(geminiCaller.encodeChatResponse(response, 'gemini-2.5-flash')).toEqual({
      candidates: [
        {
          content: {
            role: 'model',
            parts: [
              { text: 'Let me look.' },
              {
                functionCall: { id: 'call_x_0', name: 'get_weather', args: { city: 'Paris' } },
                thoughtSignature: 'CiQB+/8=',
              },
              { functionCall: { id: 'call_abc', name: 'get_time', args: {} } },
            ],
          },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      usageMetadata: {
        promptTokenCount: 900,
        candidatesTokenCount: 60,
        totalTokenCount: 960,
        cachedContentTokenCount: 512,
      },
      modelVersion: 'gemini-2.5-flash',
      responseId: 'chatcmpl-9',
    });
  });

  it.each([
    ['length', 'MAX_TOKENS'],
    ['content_filter', 'SAFETY'],
    ['error', 'OTHER'],
    ['stop', 'STOP'],
  ] as const)('when the finish reason is %s, then finishReason is %s', (finish, expected) => {
    const encoded = geminiCaller.encodeChatResponse(
      { ...response, toolCalls: [], finishReason: finish },
      'm',
    );
    expect(encoded).toMatchObject({ candidates: [{ finishReason: expected }] });
  });

  it('when the answer is empty, then the candidate still has one part (SDK chat history needs it)', () => {
    const encoded = geminiCaller.encodeChatResponse({ ...response, content: null, toolCalls: [] }, 'm');
    expect(encoded).toMatchObject({ candidates: [{ content: { parts: [{ text: '' }] } }] });
  });
});

function chunks(events: StreamEvent[], usage: Usage): Record<string, unknown>[] {
  const encoder = new GeminiStreamEncoder('gemini-2.5-flash');
  const text = events.map((event) => encoder.encode(event)).join('') + encoder.end(usage);
  const messages = new SseParser().push(text);
  for (const message of messages) expect(message.event).toBeUndefined();
  return messages.map((message) => JSON.parse(message.data));
}

describe('gemini caller: stream encoding', () => {
  it('when text and calls interleave, then text streams, calls go out whole and the last chunk has finishReason and usage', () => {
    const out = chunks(
      [
        { type: 'start', id: 'resp-1', model: 'upstream', created: 1 },
        { type: 'usage', usage: { inputTokens: 20 } },
        { type: 'text', delta: 'Looking ' },
        { type: 'text', delta: 'up.' },
        { type: 'tool_call_start', index: 0, id: 'call_a', name: 'weather' },
        { type: 'tool_call_delta', index: 0, argumentsDelta: '{"city":' },
        { type: 'tool_call_delta', index: 0, argumentsDelta: '"Paris"}' },
        { type: 'text', delta: 'And the time.' },
        { type: 'tool_call_start', index: 1, id: 'call_b', name: 'time' },
        { type: 'finish', finishReason: 'tool_calls' },
      ],
      { inputTokens: 20, outputTokens: 9, cachedInputTokens: 0 },
    );
    const meta = { modelVersion: 'gemini-2.5-flash', responseId: 'resp-1' };
    expect(out).toEqual([
      { candidates: [{ content: { role: 'model', parts: [{ text: 'Looking ' }] }, index: 0 }], ...meta },
      { candidates: [{ content: { role: 'model', parts: [{ text: 'up.' }] }, index: 0 }], ...meta },
      {
        candidates: [
          {
            content: {
              role: 'model',
              parts: [{ functionCall: { id: 'call_a', name: 'weather', args: { city: 'Paris' } } }],
            },
            index: 0,
          },
        ],
        ...meta,
      },
      { candidates: [{ content: { role: 'model', parts: [{ text: 'And the time.' }] }, index: 0 }], ...meta },
      {
        candidates: [
          {
            content: { role: 'model', parts: [{ functionCall: { id: 'call_b', name: 'time', args: {} } }] },
            finishReason: 'STOP',
            index: 0,
          },
        ],
        usageMetadata: { promptTokenCount: 20, candidatesTokenCount: 9, totalTokenCount: 29 },
        ...meta,
      },
    ]);
  });

  it('when only text streams, then the last chunk holds an empty text part with the finish reason', () => {
    const out = chunks(
      [
        { type: 'text', delta: 'Hi' },
        { type: 'finish', finishReason: 'length' },
      ],
      { inputTokens: 3, outputTokens: 1, cachedInputTokens: 2 },
    );
    expect(out.at(-1)).toMatchObject({
      candidates: [{ content: { parts: [{ text: '' }] }, finishReason: 'MAX_TOKENS' }],
      usageMetadata: {
        promptTokenCount: 3,
        candidatesTokenCount: 1,
        totalTokenCount: 4,
        cachedContentTokenCount: 2,
      },
    });
  });

  it('when an error is reported mid-stream, then it is a Gemini error chunk the SDK raises', () => {
    const encoder = geminiCaller.createStreamEncoder('m', { includeUsage: false });
    expect(encoder.error('quota exhausted', 'RESOURCE_EXHAUSTED')).toBe(
      'data: {"error":{"code":429,"message":"quota exhausted","status":"RESOURCE_EXHAUSTED"}}\n\n',
    );
  });
});

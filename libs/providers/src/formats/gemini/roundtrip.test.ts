import type {
  Candidate,
  Content,
  FunctionDeclaration,
  GenerateContentResponseUsageMetadata,
  GenerationConfig,
  Part,
  ThinkingConfig,
} from '@google/genai';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { emptyUsage, mergeUsage, type StreamEvent } from '../../canonical.js';
import { SseParser } from '../../sse.js';
import { decodeGeminiRequest, GeminiStreamEncoder, geminiCaller } from './caller.js';
import { GEMINI_TOOL_RESPONSE, GEMINI_TOOL_STREAM } from './fixtures.js';
import { decodeGeminiResponse, GeminiStreamDecoder, geminiProvider } from './provider.js';
import type {
  GeminiContent,
  GeminiPart,
  GeminiRequest,
  GeminiResponse,
  GeminiThinkingConfig,
  GeminiUsageMetadata,
} from './wire.js';

describe('gemini round trips', () => {
  it('when a Gemini request passes through the canonical model, then the upstream gets the same request', () => {
    const body = {
      systemInstruction: { parts: [{ text: 'You plan trips.' }] },
      contents: [
        {
          role: 'user',
          parts: [{ text: 'Plan Rome' }, { inlineData: { mimeType: 'image/jpeg', data: '/9j/4AAQ' } }],
        },
        {
          role: 'model',
          parts: [
            { text: 'Looking up flights.' },
            {
              functionCall: { name: 'flights', args: { to: 'FCO', adults: 2 } },
              thoughtSignature: 'CiQBcsja+/8=',
            },
          ],
        },
        {
          role: 'user',
          parts: [
            { functionResponse: { name: 'flights', response: { options: ['AZ1', 'AZ2'] } } },
            { text: 'Pick one' },
          ],
        },
      ],
      tools: [
        {
          functionDeclarations: [
            {
              name: 'flights',
              description: 'Find flights',
              parametersJsonSchema: {
                type: 'object',
                properties: { to: { type: 'string' } },
                required: ['to'],
              },
            },
          ],
        },
      ],
      toolConfig: { functionCallingConfig: { mode: 'AUTO' } },
      generationConfig: {
        maxOutputTokens: 512,
        temperature: 0.7,
        topP: 0.9,
        stopSequences: ['END'],
        seed: 3,
        responseMimeType: 'application/json',
        responseJsonSchema: { type: 'object', properties: { choice: { type: 'string' } } },
      },
    };
    const canonical = decodeGeminiRequest(body, { model: 'gemini-3-pro-preview', stream: false });
    expect(geminiProvider.encodeChatRequest(canonical, 'gemini-3-pro-preview')).toEqual(body);
  });

  it('when a Gemini response passes through the canonical model, then the client gets it back with ids on its calls', () => {
    const canonical = decodeGeminiResponse(GEMINI_TOOL_RESPONSE);
    expect(geminiCaller.encodeChatResponse(canonical, 'gemini-2.5-flash')).toEqual({
      candidates: [
        {
          content: {
            role: 'model',
            // The thought summary has no canonical form; calls gain the ids FlowLoom gave them.
            parts: [
              { text: 'Je regarde la météo à Zürich ☀️ pour vous.' },
              {
                functionCall: {
                  id: 'call_mcDJaP3sA6ey1dkPqp7fkAY_0',
                  name: 'get_weather',
                  args: { city: 'Zürich', unit: 'celsius' },
                },
                thoughtSignature: 'CiQBcsjafHc+Lk2f/8xA3Q==',
              },
              {
                functionCall: {
                  id: 'call_mcDJaP3sA6ey1dkPqp7fkAY_1',
                  name: 'get_time',
                  args: { tz: 'Europe/Zurich' },
                },
              },
            ],
          },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      // Thoughts are counted apart again, as Gemini reported them.
      usageMetadata: {
        promptTokenCount: 1510,
        candidatesTokenCount: 42,
        thoughtsTokenCount: 98,
        totalTokenCount: 1650,
        cachedContentTokenCount: 1024,
      },
      modelVersion: 'gemini-2.5-flash',
      responseId: 'mcDJaP3sA6ey1dkPqp7fkAY',
    });
  });

  it('when a Gemini stream is decoded, re-encoded and decoded again, then the events and usage are the same', () => {
    const decode = (text: string): StreamEvent[] => {
      const decoder = new GeminiStreamDecoder();
      const parser = new SseParser();
      const events = [...parser.push(text), ...parser.end()].flatMap((message) => decoder.push(message));
      expect(decoder.done).toBe(true);
      return events;
    };
    const first = decode(GEMINI_TOOL_STREAM);
    const encoder = new GeminiStreamEncoder('gemini-2.5-flash');
    let usage = emptyUsage();
    let copy = '';
    for (const event of first) {
      if (event.type === 'usage') usage = mergeUsage(usage, event.usage);
      copy += encoder.encode(event);
    }
    copy += encoder.end(usage);

    const second = decode(copy);
    const shape = (events: StreamEvent[]): StreamEvent[] =>
      events
        .filter((event) => event.type !== 'usage')
        .map((event) => (event.type === 'start' ? { ...event, created: 0 } : event));
    expect(shape(second)).toEqual(shape(first));
    const total = second.reduce(
      (sum, event) => (event.type === 'usage' ? mergeUsage(sum, event.usage) : sum),
      emptyUsage(),
    );
    expect(total).toEqual(usage);
  });
});

describe('gemini wire types against @google/genai', () => {
  it('when the encoders are type-checked, then their output fits the SDK types', () => {
    // Checked by tsc. Enum-typed fields (finishReason, mode) are string enums in the SDK, which string
    // literals do not satisfy, so they are left out of these checks.
    expectTypeOf<GeminiPart>().toExtend<Part>();
    expectTypeOf<GeminiContent>().toExtend<Content>();
    expectTypeOf<GeminiUsageMetadata>().toExtend<GenerateContentResponseUsageMetadata>();
    expectTypeOf<
      Omit<NonNullable<GeminiRequest['generationConfig']>, 'thinkingConfig'>
    >().toExtend<GenerationConfig>();
    expectTypeOf<Extract<GeminiThinkingConfig, { thinkingBudget: number }>>().toExtend<ThinkingConfig>();
    expectTypeOf<
      NonNullable<GeminiRequest['tools']>[number]['functionDeclarations'][number]
    >().toExtend<FunctionDeclaration>();
    expectTypeOf<Omit<GeminiResponse['candidates'][number], 'finishReason'>>().toExtend<
      Omit<Candidate, 'finishReason'>
    >();

    const encoded = geminiProvider.encodeChatRequest(
      { model: 'a', messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }], stream: false },
      'gemini-2.5-flash',
    );
    expect(encoded).toEqual({ contents: [{ role: 'user', parts: [{ text: 'x' }] }] });
  });
});

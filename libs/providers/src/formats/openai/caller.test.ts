import { AppError } from '@flowloom/errors';
import { describe, expect, it } from 'vitest';
import { decodeOpenAIChatRequest, openAICaller } from './caller.js';

function errorOf(body: unknown): AppError {
  try {
    decodeOpenAIChatRequest(body);
  } catch (error) {
    if (error instanceof AppError) return error;
  }
  throw new Error('expected an AppError');
}

describe('OpenAI caller format', () => {
  it('when a full request is decoded, then every field reaches the canonical request', () => {
    const request = decodeOpenAIChatRequest({
      model: 'gpt-4o',
      messages: [
        { role: 'developer', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'look' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'done' },
      ],
      max_tokens: 10,
      max_completion_tokens: 20,
      temperature: 0.5,
      stop: 'END',
      stream: true,
      stream_options: { include_usage: true },
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      tool_choice: { type: 'function', function: { name: 'f' } },
      response_format: {
        type: 'json_schema',
        json_schema: { name: 's', schema: { type: 'object' }, strict: true },
      },
      logprobs: false,
    });
    expect(request).toMatchObject({
      model: 'gpt-4o',
      maxTokens: 20,
      temperature: 0.5,
      stop: ['END'],
      stream: true,
      includeUsage: true,
      toolChoice: { type: 'tool', name: 'f' },
      responseFormat: { type: 'json_schema', name: 's', strict: true },
    });
    expect(request.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool']);
    expect(request.messages[1]).toEqual({
      role: 'user',
      content: [
        { type: 'text', text: 'look' },
        { type: 'image', url: 'data:image/png;base64,AA==' },
      ],
    });
  });

  it('when a field is wrong, then the error names it', () => {
    expect(errorOf({ model: 'm', messages: 'hi' }).param).toBe('messages');
    expect(
      errorOf({ model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }).param,
    ).toBe('temperature');
    expect(errorOf({ messages: [{ role: 'user', content: 'x' }] }).param).toBe('model');
    expect(errorOf({ model: 'm', messages: [] }).message).toMatch(/at least one message/);
    expect(errorOf({ model: 'm', messages: [{ role: 'user', content: 'x' }], n: 2 }).message).toMatch(/n=1/);
    expect(errorOf({ model: 'm', messages: [{ role: 'wizard', content: 'x' }] }).param).toMatch(
      /^messages\.0/,
    );
  });

  it('when a stream is encoded with include_usage, then every chunk has usage null and the last carries the total', () => {
    const encoder = openAICaller.createStreamEncoder('alias', { includeUsage: true });
    const frames =
      encoder.encode({ type: 'start', id: 'id1', model: 'upstream-model', created: 1 }) +
      encoder.encode({ type: 'text', delta: 'hi' }) +
      encoder.encode({ type: 'finish', finishReason: 'stop' }) +
      encoder.end({ inputTokens: 3, outputTokens: 2, cachedInputTokens: 1 });
    const parts = frames.split('\n\n').filter(Boolean);
    expect(parts.at(-1)).toBe('data: [DONE]');
    const chunks = parts.slice(0, -1).map((p) => JSON.parse(p.slice(6)) as Record<string, unknown>);
    expect(chunks.slice(0, -1).every((c) => c.usage === null && c.model === 'alias' && c.id === 'id1')).toBe(
      true,
    );
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: {
        prompt_tokens: 3,
        completion_tokens: 2,
        total_tokens: 5,
        prompt_tokens_details: { cached_tokens: 1 },
      },
    });
  });
});

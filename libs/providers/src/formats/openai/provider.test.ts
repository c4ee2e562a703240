import { describe, expect, it } from 'vitest';
import { SseParser } from '../../sse.js';
import { createOpenAIWire } from './provider.js';

const wire = createOpenAIWire({ maxTokensField: 'max_completion_tokens' });

function decode(transcript: string, splitEvery: number) {
  const parser = new SseParser();
  const decoder = wire.createStreamDecoder();
  const events = [];
  for (let i = 0; i < transcript.length; i += splitEvery) {
    for (const m of parser.push(transcript.slice(i, i + splitEvery))) events.push(...decoder.push(m));
  }
  for (const m of parser.end()) events.push(...decoder.push(m));
  return { events, done: decoder.done };
}

const azureTranscript = [
  'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":"}}]},"finish_reason":null}]}',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":null}]}',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27,"prompt_tokens_details":{"cached_tokens":4}}}',
  'data: [DONE]',
  '',
].join('\n\n');

describe('OpenAI stream decoding', () => {
  it('when an Azure stream opens with a prompt-filter chunk, then the start carries the real id, at any split', () => {
    for (const split of [1, 7, 64, 10_000]) {
      const { events, done } = decode(azureTranscript, split);
      expect(done).toBe(true);
      expect(events[0]).toEqual({ type: 'start', id: 'chatcmpl-1', model: 'gpt-4o', created: 5 });
      expect(events.filter((e) => e.type === 'tool_call_start')).toEqual([
        { type: 'tool_call_start', index: 0, id: 'call_1', name: 'f' },
      ]);
      const args = events.flatMap((e) => (e.type === 'tool_call_delta' ? [e.argumentsDelta] : [])).join('');
      expect(args).toBe('{"a":1}');
      expect(events).toContainEqual({ type: 'finish', finishReason: 'tool_calls' });
      expect(events.at(-1)).toEqual({
        type: 'usage',
        usage: { inputTokens: 20, outputTokens: 7, cachedInputTokens: 4 },
      });
    }
  });

  it('when a stream frame is an error object, then decoding throws an upstream error', () => {
    const decoder = wire.createStreamDecoder();
    expect(() =>
      decoder.push({ event: undefined, data: '{"error":{"message":"overloaded","type":"server_error"}}' }),
    ).toThrow(/overloaded/);
  });

  it('when streaming is requested, then usage is always asked of the upstream', () => {
    const body = wire.encodeChatRequest(
      {
        model: 'm',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }],
        stream: true,
        maxTokens: 5,
      },
      'gpt-4o',
    );
    expect(body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 5,
      messages: [{ role: 'user', content: 'x' }],
    });
  });
});

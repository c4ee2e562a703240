import type {
  MessageCreateParamsBase,
  RawContentBlockDelta,
  Usage as SdkUsage,
  StopReason,
  TextBlock,
  ToolUseBlock,
} from '@anthropic-ai/sdk/resources/messages';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { emptyUsage, mergeUsage, type StreamEvent } from '../../canonical.js';
import { SseParser } from '../../sse.js';
import {
  AnthropicStreamEncoder,
  anthropicCaller,
  decodeAnthropicRequest,
  toAnthropicMessage,
} from './caller.js';
import { ANTHROPIC_TOOL_MESSAGE, ANTHROPIC_TOOL_STREAM } from './fixtures.js';
import {
  AnthropicStreamDecoder,
  anthropicProvider,
  decodeAnthropicResponse,
  encodeAnthropicRequest,
} from './provider.js';
import type {
  AnthropicContentBlockDeltaEvent,
  AnthropicMessage,
  AnthropicRequest,
  AnthropicTextBlock,
  AnthropicToolUseBlock,
} from './wire.js';

describe('anthropic round trips', () => {
  it('when an Anthropic request passes through the canonical model, then the upstream gets the same request', () => {
    const body = {
      model: 'claude-opus-4-1',
      max_tokens: 2048,
      system: [
        { type: 'text', text: 'You are a travel agent.' },
        { type: 'text', text: 'Be precise.' },
      ],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Book Paris; here is my passport.' },
            { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Searching flights.' },
            {
              type: 'tool_use',
              id: 'toolu_1',
              name: 'search',
              input: { to: 'CDG', passengers: [{ age: 30 }] },
            },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'AF123 at 9:00' },
            { type: 'text', text: 'Take it.' },
          ],
        },
      ],
      tools: [
        {
          name: 'search',
          description: 'Search flights',
          input_schema: { type: 'object', properties: { to: { type: 'string' } }, required: ['to'] },
        },
      ],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      stop_sequences: ['STOP'],
      temperature: 0.3,
      top_p: 0.8,
      stream: true,
      metadata: { user_id: 'traveller-7' },
      output_config: { format: { type: 'json_schema', schema: { type: 'object' } } },
    };
    expect(anthropicProvider.encodeChatRequest(decodeAnthropicRequest(body), body.model)).toEqual(body);
  });

  it('when an Anthropic message passes through the canonical model, then the client gets the same message', () => {
    const canonical = decodeAnthropicResponse(ANTHROPIC_TOOL_MESSAGE);
    expect(anthropicCaller.encodeChatResponse(canonical, ANTHROPIC_TOOL_MESSAGE.model)).toEqual({
      id: ANTHROPIC_TOOL_MESSAGE.id,
      type: 'message',
      role: 'assistant',
      model: ANTHROPIC_TOOL_MESSAGE.model,
      // Unchanged, thinking block and signature included (the SDK's null citations are not restated).
      content: [
        { type: 'thinking', thinking: 'The user wants two things.', signature: 'EqQBCgIYAhIM' },
        { type: 'text', text: 'Je vérifie la météo à Zürich ☀️ et l’heure.' },
        {
          type: 'tool_use',
          id: 'toolu_01KFbKqPYSuAKujiL6mTfzYA',
          name: 'get_weather',
          input: { city: 'Zürich' },
        },
        {
          type: 'tool_use',
          id: 'toolu_01A09q90qw90lq917835lq9',
          name: 'get_time',
          input: { tz: 'Europe/Zurich' },
        },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: {
        input_tokens: 12,
        output_tokens: 89,
        cache_creation_input_tokens: 300,
        cache_read_input_tokens: 2048,
        cache_creation: { ephemeral_5m_input_tokens: 300, ephemeral_1h_input_tokens: 0 },
      },
    });
  });

  it('when an Anthropic stream is decoded and re-encoded, then the client sees the same events and usage', () => {
    const parser = new SseParser();
    const decoder = new AnthropicStreamDecoder();
    const encoder = new AnthropicStreamEncoder('claude-sonnet-4-5-20250929');
    let usage = emptyUsage();
    let reencoded = '';
    for (const message of [...parser.push(ANTHROPIC_TOOL_STREAM), ...parser.end()]) {
      for (const event of decoder.push(message)) {
        if (event.type === 'usage') usage = mergeUsage(usage, event.usage);
        reencoded += encoder.encode(event);
      }
    }
    reencoded += encoder.end(usage);

    const original = new SseParser()
      .push(ANTHROPIC_TOOL_STREAM)
      .filter((message) => message.event !== 'ping' && !message.data.includes('"partial_json":""'));
    const copy = new SseParser().push(reencoded);
    expect(copy.map((m) => m.event)).toEqual(original.map((m) => m.event));

    // Every frame but message_start (whose usage lists extra fields) is identical in content.
    const strip = (data: string): unknown => JSON.parse(data);
    expect(copy.slice(1).map((m) => strip(m.data))).toEqual(original.slice(1).map((m) => strip(m.data)));
    expect(strip(copy[0]?.data ?? '')).toMatchObject({
      type: 'message_start',
      message: {
        id: 'msg_01QC4g3HwBThD4BaNtBckFDJ',
        usage: {
          input_tokens: 12,
          cache_creation_input_tokens: 300,
          cache_read_input_tokens: 2048,
          output_tokens: 1,
        },
      },
    });

    // Decoding the copy again gives the same canonical events.
    const again: StreamEvent[] = [];
    const secondDecoder = new AnthropicStreamDecoder();
    for (const message of copy) again.push(...secondDecoder.push(message));
    const first: StreamEvent[] = [];
    const firstDecoder = new AnthropicStreamDecoder();
    for (const message of new SseParser().push(ANTHROPIC_TOOL_STREAM))
      first.push(...firstDecoder.push(message));
    const withoutTime = (events: StreamEvent[]): StreamEvent[] =>
      events.map((event) => (event.type === 'start' ? { ...event, created: 0 } : event));
    expect(withoutTime(again)).toEqual(withoutTime(first));
    expect(secondDecoder.done).toBe(true);
  });
});

describe('anthropic wire types against @anthropic-ai/sdk', () => {
  it('when the encoders are type-checked, then their output fits the SDK types', () => {
    // Checked by tsc; the runtime assertions guard the sample values.
    expectTypeOf<AnthropicRequest>().toExtend<MessageCreateParamsBase>();
    expectTypeOf<AnthropicTextBlock>().toExtend<Pick<TextBlock, 'type' | 'text'>>();
    expectTypeOf<AnthropicToolUseBlock>().toExtend<Pick<ToolUseBlock, 'type' | 'id' | 'name' | 'input'>>();
    expectTypeOf<AnthropicMessage['stop_reason']>().toExtend<StopReason | null>();
    expectTypeOf<AnthropicMessage['usage']>().toExtend<
      Pick<
        SdkUsage,
        'input_tokens' | 'output_tokens' | 'cache_creation_input_tokens' | 'cache_read_input_tokens'
      >
    >();
    expectTypeOf<AnthropicContentBlockDeltaEvent['delta']>().toExtend<RawContentBlockDelta>();

    const request = encodeAnthropicRequest(
      { model: 'a', messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }], stream: false },
      'claude',
    );
    const sdkRequest: MessageCreateParamsBase = request;
    expect(sdkRequest.max_tokens).toBeGreaterThan(0);
    const message = toAnthropicMessage(
      {
        id: 'x',
        model: 'm',
        created: 0,
        content: 'hi',
        toolCalls: [],
        finishReason: 'stop',
        usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 },
      },
      'm',
    );
    expect(message.stop_reason).toBe('end_turn');
  });
});

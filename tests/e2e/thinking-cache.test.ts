import Anthropic from '@anthropic-ai/sdk';
import { sample, type TestGateway } from '@flowloom/gateway/testing';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../fakes/index.js';
import {
  bodyOf,
  COMPLETED,
  eventFor,
  lastCall,
  modelCalls,
  resetAndCloseAfterSuite,
  startAnthropicAndOpenAI,
} from './helpers.js';

let anthropicFake: FakeProvider;
let openaiFake: FakeProvider;
let t: TestGateway;
let anthropic: Anthropic;
let openai: OpenAI;
let anthropicKey: string;

beforeAll(async () => {
  ({
    anthropicFake,
    openaiFake,
    gateway: t,
    anthropic,
    openai,
    anthropicKey,
  } = await startAnthropicAndOpenAI('thinking-cache', {
    models: {
      claude: { deployments: [{ provider: 'anthropic', model: 'claude-sonnet-4-5' }] },
      reasoner: { deployments: [{ provider: 'openai', model: 'gpt-5-mini' }] },
    },
    routing: { maxAttempts: 1 },
  }));
});

resetAndCloseAfterSuite(() => ({ gateway: t, fakes: [anthropicFake, openaiFake] }));

const weatherTool: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  cache_control: { type: 'ephemeral' },
};

/** A request using prompt caching on system, tools and content, and extended thinking. */
const cachedThinking = {
  model: 'claude',
  max_tokens: 8000,
  thinking: { type: 'enabled', budget_tokens: 4000 },
  system: [
    { type: 'text', text: 'You are a weather assistant.' },
    {
      type: 'text',
      text: 'A long and stable reference manual.',
      cache_control: { type: 'ephemeral', ttl: '1h' },
    },
  ],
  tools: [weatherTool],
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'A long document worth caching.', cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'Weather in Zürich?' },
      ],
    },
  ],
} satisfies Anthropic.MessageCreateParamsNonStreaming;

const scriptedThinking = {
  kind: 'reply',
  thinking: [
    { thinking: 'The user wants Zürich weather.', signature: 'EqQBCkgIBxABGAIqQsig1==' },
    { redacted: 'EmwKAhgBEgy3va3pzixRedacted' },
  ],
  text: 'Let me check.',
  toolCalls: [{ name: 'get_weather', arguments: { city: 'Zürich' }, id: 'toolu_01Zurich' }],
  usage: { input: 5000, output: 300, cached: 3000, cacheWrite: 1500, cacheWrite1h: 1000, reasoning: 200 },
} as const;

describe('prompt caching and extended thinking through the gateway (Anthropic SDK → Anthropic)', () => {
  it('when a cached, thinking request is not streamed, then markers reach upstream unchanged and the thinking comes back signed', async () => {
    anthropicFake.script(scriptedThinking);
    const { data, response } = await anthropic.messages.create(cachedThinking).withResponse();

    const upstream = bodyOf(lastCall(anthropicFake));
    expect(upstream.thinking).toEqual({ type: 'enabled', budget_tokens: 4000 });
    expect(upstream.max_tokens).toBe(8000);
    expect(upstream.system).toEqual(cachedThinking.system);
    expect(upstream.tools).toEqual([weatherTool]);
    expect(upstream.messages).toEqual(cachedThinking.messages);

    expect(data.content).toEqual([
      { type: 'thinking', thinking: 'The user wants Zürich weather.', signature: 'EqQBCkgIBxABGAIqQsig1==' },
      { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzixRedacted' },
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', id: 'toolu_01Zurich', name: 'get_weather', input: { city: 'Zürich' } },
    ]);
    expect(data.stop_reason).toBe('tool_use');
    expect(data.usage).toMatchObject({
      input_tokens: 500,
      cache_read_input_tokens: 3000,
      cache_creation_input_tokens: 1500,
      output_tokens: 300,
      output_tokens_details: { thinking_tokens: 200 },
      cache_creation: { ephemeral_5m_input_tokens: 500, ephemeral_1h_input_tokens: 1000 },
    });

    const event = await eventFor(t, response.headers.get('x-request-id'));
    expect(event.type).toBe(COMPLETED);
    expect(event.data).toMatchObject({
      usage: {
        inputTokens: 5000,
        outputTokens: 300,
        cachedInputTokens: 3000,
        cacheWriteTokens: 1500,
        cacheWrite1hTokens: 1000,
        reasoningTokens: 200,
      },
    });
    // claude-sonnet-4 prices per million: 500 plain × $3, 3000 reads × $0.30, 500 five-minute writes
    // × $3.75, 1000 one-hour writes × $6, 300 out × $15.
    expect(event.data.costUsd).toBeCloseTo(
      (500 * 3 + 3000 * 0.3 + 500 * 3.75 + 1000 * 6 + 300 * 15) / 1e6,
      10,
    );
  });

  it('when a thinking answer is streamed, then the SDK sees the upstream event sequence, thinking and signature deltas', async () => {
    // No tool call: the API's empty first input_json_delta is not forwarded, which would make the
    // sequences differ for a reason unrelated to thinking.
    const reply = {
      ...scriptedThinking,
      toolCalls: [],
      thinking: [
        {
          thinking: 'The user wants Zürich weather.',
          chunks: ['The user wants', ' Zürich weather.'],
          signature: 'EqQBCkgIBxABGAIqQsig1==',
        },
        { redacted: 'EmwKAhgBEgy3va3pzixRedacted' },
      ],
    } as const;
    const eventTypes = (stream: ReturnType<Anthropic['messages']['stream']>): string[] => {
      const types: string[] = [];
      stream.on('streamEvent', (event: Anthropic.RawMessageStreamEvent) =>
        types.push(event.type === 'content_block_delta' ? event.delta.type : event.type),
      );
      return types;
    };
    // What the upstream itself sends, read by the same SDK without the gateway in between.
    anthropicFake.script(reply);
    const direct = new Anthropic({ baseURL: anthropicFake.url, apiKey: anthropicKey, maxRetries: 0 });
    const directStream = direct.messages.stream({ ...cachedThinking, model: 'claude-sonnet-4-5' });
    const upstreamTypes = eventTypes(directStream);
    await directStream.finalMessage();

    anthropicFake.script(reply);
    const stream = anthropic.messages.stream(cachedThinking);
    const thinkingDeltas: string[] = [];
    const signatures: string[] = [];
    stream.on('thinking', (delta) => thinkingDeltas.push(delta));
    stream.on('signature', (signature) => signatures.push(signature));
    const gatewayTypes = eventTypes(stream);
    const message = await stream.finalMessage();

    expect(upstreamTypes).toContain('signature_delta');
    expect(gatewayTypes).toEqual(upstreamTypes);
    expect(thinkingDeltas).toEqual(['The user wants', ' Zürich weather.']);
    expect(signatures).toEqual(['EqQBCkgIBxABGAIqQsig1==']);
    expect(message.content).toEqual([
      { type: 'thinking', thinking: 'The user wants Zürich weather.', signature: 'EqQBCkgIBxABGAIqQsig1==' },
      { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzixRedacted' },
      { type: 'text', text: 'Let me check.' },
    ]);
    expect(message.usage).toMatchObject({
      input_tokens: 500,
      cache_read_input_tokens: 3000,
      cache_creation_input_tokens: 1500,
      output_tokens: 300,
    });
    expect(bodyOf(lastCall(anthropicFake))).toMatchObject({
      stream: true,
      thinking: cachedThinking.thinking,
    });

    const requestId = (await stream.withResponse()).response.headers.get('x-request-id');
    const event = await eventFor(t, requestId);
    expect(event.data).toMatchObject({
      stream: true,
      usage: { inputTokens: 5000, cachedInputTokens: 3000, cacheWriteTokens: 1500, reasoningTokens: 200 },
    });
  });

  it('when the thinking and tool use are sent back with the tool result, then upstream gets the blocks unchanged', async () => {
    anthropicFake.script(scriptedThinking, { kind: 'reply', text: 'Sunny, 24°C.' });
    const first = await anthropic.messages.create(cachedThinking);
    const second = await anthropic.messages.create({
      ...cachedThinking,
      messages: [
        ...cachedThinking.messages,
        { role: 'assistant', content: first.content },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 'toolu_01Zurich', content: 'sunny, 24' }],
        },
      ],
    });
    expect(second.content).toEqual([{ type: 'text', text: 'Sunny, 24°C.' }]);
    const messages = bodyOf(lastCall(anthropicFake)).messages as Array<{ role: string; content: unknown }>;
    expect(messages[1]).toEqual({ role: 'assistant', content: first.content });
    expect(messages[2]?.content).toEqual([
      { type: 'tool_result', tool_use_id: 'toolu_01Zurich', content: 'sunny, 24' },
    ]);
  });

  it('when budget_tokens is invalid, then the SDK gets a BadRequestError naming it and nothing goes upstream', async () => {
    for (const [maxTokens, budget, fragment] of [
      [8000, 512, 'thinking.budget_tokens: must be >= 1024'],
      [2048, 2048, 'thinking.budget_tokens: must be less than max_tokens (2048)'],
    ] as const) {
      const error = await anthropic.messages
        .create({
          ...cachedThinking,
          max_tokens: maxTokens,
          thinking: { type: 'enabled', budget_tokens: budget },
        })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(Anthropic.BadRequestError);
      const e = error as InstanceType<typeof Anthropic.BadRequestError>;
      expect(e.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
      expect(e.message).toContain(fragment);
    }
    expect(modelCalls(anthropicFake)).toHaveLength(0);
  });
});

describe('reasoning and cached tokens through the gateway (OpenAI SDK)', () => {
  it('when reasoning_effort goes to an Anthropic model, then it becomes a thinking budget and usage details come back without the thinking text', async () => {
    anthropicFake.script({
      kind: 'reply',
      thinking: [{ thinking: 'private reasoning', signature: 'EqQBsigOpenAI==' }],
      text: '42',
      usage: { input: 2000, output: 120, cached: 1500, cacheWrite: 100, reasoning: 100 },
    });
    const completion = await openai.chat.completions.create({
      model: 'claude',
      reasoning_effort: 'medium',
      max_completion_tokens: 12_000,
      messages: [{ role: 'user', content: 'The answer?' }],
    });
    expect(bodyOf(lastCall(anthropicFake))).toMatchObject({
      max_tokens: 12_000,
      thinking: { type: 'enabled', budget_tokens: 8192 },
    });
    expect(completion.choices[0]?.message.content).toBe('42');
    expect(JSON.stringify(completion)).not.toContain('private reasoning');
    expect(completion.usage).toMatchObject({
      prompt_tokens: 2000,
      completion_tokens: 120,
      prompt_tokens_details: { cached_tokens: 1500 },
      completion_tokens_details: { reasoning_tokens: 100 },
    });
  });

  it('when the same is streamed with include_usage, then the usage chunk has the cached and reasoning details', async () => {
    anthropicFake.script({
      kind: 'reply',
      thinking: [{ thinking: 'private reasoning', signature: 'EqQBsigOpenAI==' }],
      chunks: ['4', '2'],
      usage: { input: 2000, output: 120, cached: 1500, reasoning: 100 },
    });
    const stream = await openai.chat.completions.create({
      model: 'claude',
      reasoning_effort: 'high',
      messages: [{ role: 'user', content: 'The answer?' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('42');
    expect(usage).toMatchObject({
      prompt_tokens: 2000,
      prompt_tokens_details: { cached_tokens: 1500 },
      completion_tokens_details: { reasoning_tokens: 100 },
    });
    // No token limit was given: the default answer length comes on top of the high budget.
    expect(bodyOf(lastCall(anthropicFake))).toMatchObject({
      max_tokens: 24_576 + 4096,
      thinking: { type: 'enabled', budget_tokens: 24_576 },
    });
  });

  it('when reasoning_effort goes to an OpenAI model, then it is carried and its reasoning tokens are reported', async () => {
    openaiFake.script({
      kind: 'reply',
      text: 'ok',
      usage: { input: 900, output: 400, cached: 512, reasoning: 320 },
    });
    const completion = await openai.chat.completions.create({
      model: 'reasoner',
      reasoning_effort: 'low',
      messages: [{ role: 'user', content: 'Think briefly.' }],
    });
    expect(bodyOf(lastCall(openaiFake)).reasoning_effort).toBe('low');
    expect(completion.usage).toMatchObject({
      prompt_tokens_details: { cached_tokens: 512 },
      completion_tokens_details: { reasoning_tokens: 320 },
    });
  });

  it('when reasoning_effort is not a documented level, then the SDK gets a 400 and nothing goes upstream', async () => {
    const error = await openai.chat.completions
      .create({
        model: 'claude',
        // @ts-expect-error an undocumented level, on purpose
        reasoning_effort: 'extreme',
        messages: [{ role: 'user', content: 'x' }],
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('reasoning_effort');
    expect(modelCalls(anthropicFake)).toHaveLength(0);
  });
});

describe('token metrics for cache writes and reasoning', () => {
  const series = { model: 'claude', deployment: 'anthropic/claude-sonnet-4-5' };
  const tokenCounts = async (): Promise<Record<string, number>> => {
    const res = await t.get('/metrics');
    expect(res.status).toBe(200);
    const counts: Record<string, number> = {};
    for (const kind of ['input', 'output', 'cached_input', 'cache_write', 'cache_write_1h', 'reasoning'])
      counts[kind] = sample(res.text, 'flowloom_tokens_total', { ...series, kind }) ?? 0;
    return counts;
  };
  const grew = (before: Record<string, number>, after: Record<string, number>) =>
    Object.fromEntries(Object.entries(after).map(([kind, n]) => [kind, n - (before[kind] ?? 0)]));
  const reported = {
    input: 5000,
    output: 300,
    cached_input: 3000,
    cache_write: 1500,
    cache_write_1h: 1000,
    reasoning: 200,
  };

  it('when an answer reports cache writes and thinking tokens, then /metrics counts each kind', async () => {
    const before = await tokenCounts();
    anthropicFake.script(scriptedThinking);
    await anthropic.messages.create(cachedThinking);
    expect(grew(before, await tokenCounts())).toEqual(reported);
  });

  it('when the answer is streamed, then the same kinds are counted from the stream', async () => {
    const before = await tokenCounts();
    anthropicFake.script(scriptedThinking);
    const stream = anthropic.messages.stream(cachedThinking);
    await stream.finalMessage();
    await expect.poll(async () => grew(before, await tokenCounts())).toEqual(reported);
  });
});

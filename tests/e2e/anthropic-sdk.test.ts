import Anthropic from '@anthropic-ai/sdk';
import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from '../fakes/index.js';
import { bodyOf, COMPLETED, eventFor, FAILED, lastCall, modelCalls } from './helpers.js';

const UPSTREAM_KEY = 'sk-ant-fake-upstream-0123456789abcdef';

let fake: FakeProvider;
let t: TestGateway;
let key: string;
let client: Anthropic;

const weatherTool: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Current weather in a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
  },
};

beforeAll(async () => {
  fake = await startFakeProvider({ kind: 'anthropic', apiKey: UPSTREAM_KEY });
  t = await startTestGateway({
    overrides: {
      providers: { anthropic: { kind: 'anthropic', baseUrl: fake.url, apiKey: UPSTREAM_KEY } },
      models: {
        claude: { deployments: [{ provider: 'anthropic', model: 'claude-sonnet-4-5' }] },
        'claude-pool': {
          deployments: [
            { provider: 'anthropic', model: 'claude-sonnet-4-5' },
            { provider: 'anthropic', model: 'claude-haiku-4-5' },
          ],
        },
      },
      routing: { maxAttempts: 2, retryBaseMs: 1, retryMaxMs: 20 },
    },
  });
  key = (await t.createKey({ name: 'anthropic-sdk' })).key;
  client = new Anthropic({ baseURL: t.url, apiKey: key, maxRetries: 0, timeout: 10_000 });
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
});

beforeEach(() => fake.reset());

const ask = (text: string): Anthropic.MessageParam[] => [{ role: 'user', content: text }];

describe('the Anthropic SDK against the gateway', () => {
  it('when a message is not streamed, then the SDK gets the text, end_turn, exact usage and the routing headers', async () => {
    fake.script({
      kind: 'reply',
      text: 'Bonjour.',
      usage: { input: 100, output: 4, cached: 60, cacheWrite: 20 },
    });
    const { data, response, request_id } = await client.messages
      .create({ model: 'claude', max_tokens: 64, messages: ask('Say hello in French') })
      .withResponse();

    expect(data.type).toBe('message');
    expect(data.role).toBe('assistant');
    expect(data.model).toBe('claude');
    expect(data.id).toMatch(/^msg_/);
    expect(data.content).toEqual([expect.objectContaining({ type: 'text', text: 'Bonjour.' })]);
    expect(data.stop_reason).toBe('end_turn');
    expect(data.stop_sequence).toBeNull();
    // Anthropic counts uncached, cache-read and cache-write input tokens apart.
    expect(data.usage).toMatchObject({
      input_tokens: 20,
      output_tokens: 4,
      cache_read_input_tokens: 60,
      cache_creation_input_tokens: 20,
    });
    expect(response.headers.get('x-flowloom-deployment')).toBe('anthropic/claude-sonnet-4-5');
    expect(response.headers.get('x-flowloom-attempts')).toBe('1');
    // Where the SDK finds the request id, as on Anthropic's own API.
    expect(request_id).toBe(response.headers.get('x-request-id'));

    const upstream = lastCall(fake);
    expect(upstream.path).toBe('/v1/messages');
    expect(upstream.headers['x-api-key']).toBe(UPSTREAM_KEY);
    expect(upstream.headers['anthropic-version']).toBe('2023-06-01');
    expect(bodyOf(upstream)).toMatchObject({ model: 'claude-sonnet-4-5', max_tokens: 64 });

    const event = await eventFor(t, response.headers.get('x-request-id'));
    expect(event.type).toBe(COMPLETED);
    expect(event.data).toMatchObject({
      api: 'anthropic',
      stream: false,
      usage: { inputTokens: 100, outputTokens: 4, cachedInputTokens: 60 },
    });
  });

  it('when a system prompt is given, then it reaches upstream as the top-level system field', async () => {
    fake.script({ kind: 'reply', text: 'Arr.' });
    await client.messages.create({
      model: 'claude',
      max_tokens: 32,
      system: 'You are a pirate.',
      messages: ask('Greet me'),
      temperature: 0.5,
      top_k: 5,
    });
    const upstream = bodyOf(lastCall(fake));
    const system = upstream.system;
    const systemText =
      typeof system === 'string' ? system : (system as Array<{ text: string }>).map((b) => b.text).join('');
    expect(systemText).toBe('You are a pirate.');
    expect(upstream.messages).toEqual([{ role: 'user', content: expect.anything() as unknown }]);
    expect(JSON.stringify(upstream.messages)).toContain('Greet me');
    expect(JSON.stringify(upstream.messages)).not.toContain('pirate');
    expect(upstream.temperature).toBe(0.5);
  });

  it('when a message is streamed with messages.stream, then text events arrive in order and finalMessage has usage', async () => {
    fake.script({
      kind: 'reply',
      chunks: ['The ', 'quick ', 'fox.'],
      usage: { input: 30, output: 3, cached: 10 },
    });
    const stream = client.messages.stream({ model: 'claude', max_tokens: 64, messages: ask('Tell me') });
    const deltas: string[] = [];
    stream.on('text', (delta) => deltas.push(delta));
    const message = await stream.finalMessage();
    expect(deltas.join('')).toBe('The quick fox.');
    expect(deltas.length).toBeGreaterThanOrEqual(3);
    expect(message.content).toEqual([expect.objectContaining({ type: 'text', text: 'The quick fox.' })]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage).toMatchObject({ input_tokens: 20, cache_read_input_tokens: 10, output_tokens: 3 });
    expect(bodyOf(lastCall(fake)).stream).toBe(true);

    const requestId = (await stream.withResponse()).response.headers.get('x-request-id');
    const event = await eventFor(t, requestId);
    expect(event.data).toMatchObject({
      stream: true,
      usage: { inputTokens: 30, outputTokens: 3, cachedInputTokens: 10 },
    });
  });

  it('when the raw stream is read, then the events follow the Messages API order', async () => {
    fake.script({ kind: 'reply', chunks: ['a', 'b'] });
    const stream = await client.messages.create({
      model: 'claude',
      max_tokens: 16,
      messages: ask('x'),
      stream: true,
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types[0]).toBe('message_start');
    expect(types[1]).toBe('content_block_start');
    expect(types.filter((x) => x === 'content_block_delta').length).toBeGreaterThanOrEqual(2);
    expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
  });

  it('when the model uses a tool, then the answer has a tool_use block with parsed input and stop_reason tool_use', async () => {
    fake.script({
      kind: 'reply',
      text: 'Let me check.',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Lisbon' }, id: 'toolu_01lisbon' }],
    });
    const message = await client.messages.create({
      model: 'claude',
      max_tokens: 128,
      tools: [weatherTool],
      tool_choice: { type: 'auto' },
      messages: ask('Weather in Lisbon?'),
    });
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toEqual([
      expect.objectContaining({ type: 'text', text: 'Let me check.' }),
      expect.objectContaining({
        type: 'tool_use',
        id: 'toolu_01lisbon',
        name: 'get_weather',
        input: { city: 'Lisbon' },
      }),
    ]);
    const upstream = bodyOf(lastCall(fake));
    expect(upstream.tools).toEqual([expect.objectContaining(weatherTool)]);
    expect(upstream.tool_choice).toMatchObject({ type: 'auto' });
  });

  it('when a tool_use is streamed in fragments, then the SDK reassembles its input', async () => {
    fake.script({
      kind: 'reply',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'São Paulo' }, fragments: 4 }],
    });
    const stream = client.messages.stream({
      model: 'claude',
      max_tokens: 128,
      tools: [weatherTool],
      messages: ask('Weather in São Paulo?'),
    });
    const partials: string[] = [];
    stream.on('inputJson', (partial) => partials.push(partial));
    const message = await stream.finalMessage();
    expect(partials.length).toBeGreaterThanOrEqual(2);
    expect(message.stop_reason).toBe('tool_use');
    const block = message.content.find((b) => b.type === 'tool_use');
    expect(block).toMatchObject({ name: 'get_weather', input: { city: 'São Paulo' } });
    expect((block as Anthropic.ToolUseBlock).id).toMatch(/^toolu_/);
  });

  it('when a tool result is sent back, then it reaches upstream as a tool_result block', async () => {
    fake.script({ kind: 'reply', text: 'Sunny, 24°C.' });
    const message = await client.messages.create({
      model: 'claude',
      max_tokens: 64,
      tools: [weatherTool],
      messages: [
        { role: 'user', content: 'Weather in Lisbon?' },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 'toolu_01abc', name: 'get_weather', input: { city: 'Lisbon' } }],
        },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 'toolu_01abc', content: 'sunny, 24' }],
        },
      ],
    });
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Sunny, 24°C.' });
    const messages = bodyOf(lastCall(fake)).messages as Array<{ role: string; content: unknown }>;
    expect(messages[1]?.content).toEqual([
      expect.objectContaining({
        type: 'tool_use',
        id: 'toolu_01abc',
        name: 'get_weather',
        input: { city: 'Lisbon' },
      }),
    ]);
    expect(JSON.stringify(messages[2]?.content)).toContain('"tool_use_id":"toolu_01abc"');
    expect(JSON.stringify(messages[2]?.content)).toContain('sunny, 24');
  });

  it('when the answer is cut by max_tokens, then stop_reason is max_tokens, streamed or not', async () => {
    fake.script(
      { kind: 'reply', text: 'A long', finish: 'length' },
      { kind: 'reply', text: 'A long', finish: 'length' },
    );
    const plain = await client.messages.create({ model: 'claude', max_tokens: 2, messages: ask('Essay') });
    expect(plain.stop_reason).toBe('max_tokens');
    const streamed = await client.messages
      .stream({ model: 'claude', max_tokens: 2, messages: ask('Essay') })
      .finalMessage();
    expect(streamed.stop_reason).toBe('max_tokens');
    expect(bodyOf(lastCall(fake)).max_tokens).toBe(2);
  });

  it('when a stop sequence matched, then stop_reason is stop_sequence and the sequence is reported, streamed or not', async () => {
    fake.script(
      { kind: 'reply', text: 'one two', finish: 'stop_sequence', stopSequence: '###' },
      { kind: 'reply', text: 'one two', finish: 'stop_sequence', stopSequence: '###' },
    );
    const plain = await client.messages.create({
      model: 'claude',
      max_tokens: 64,
      stop_sequences: ['###', 'END'],
      messages: ask('Count'),
    });
    expect(plain.stop_reason).toBe('stop_sequence');
    expect(plain.stop_sequence).toBe('###');
    expect(bodyOf(lastCall(fake)).stop_sequences).toEqual(['###', 'END']);
    const streamed = await client.messages
      .stream({ model: 'claude', max_tokens: 64, stop_sequences: ['###'], messages: ask('Count') })
      .finalMessage();
    expect(streamed.stop_reason).toBe('stop_sequence');
    expect(streamed.stop_sequence).toBe('###');
  });

  it('when the model is unknown, then the SDK throws NotFoundError with the Anthropic error shape', async () => {
    const error = await client.messages
      .create({ model: 'claude-nope', max_tokens: 8, messages: ask('hi') })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.NotFoundError);
    const e = error as InstanceType<typeof Anthropic.NotFoundError>;
    expect(e.status).toBe(404);
    expect(e.error).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    expect(e.headers.get('x-request-id')).toBeTruthy();
    expect(e.requestID).toBe(e.headers.get('x-request-id'));
    expect(modelCalls(fake)).toHaveLength(0);
  });

  it('when the key is wrong, then the SDK throws AuthenticationError', async () => {
    const stranger = new Anthropic({ baseURL: t.url, apiKey: 'flk_wrong', maxRetries: 0 });
    const error = await stranger.messages
      .create({ model: 'claude', max_tokens: 8, messages: ask('hi') })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((error as InstanceType<typeof Anthropic.AuthenticationError>).error).toMatchObject({
      type: 'error',
      error: { type: 'authentication_error' },
    });
    expect(modelCalls(fake)).toHaveLength(0);
  });

  it('when the request is invalid, then the SDK throws BadRequestError and nothing goes upstream', async () => {
    const error = await client.messages
      .create({ model: 'claude', max_tokens: 8, messages: [] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect((error as InstanceType<typeof Anthropic.BadRequestError>).error).toMatchObject({
      error: { type: 'invalid_request_error' },
    });
    expect(modelCalls(fake)).toHaveLength(0);
  });

  it('when every deployment answers 429, then the SDK throws RateLimitError and a failed event is recorded', async () => {
    fake.script({ kind: 'error', status: 429, retryAfter: 0 }, { kind: 'error', status: 429, retryAfter: 0 });
    const error = await client.messages
      .create({ model: 'claude-pool', max_tokens: 8, messages: ask('hi') })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    const e = error as InstanceType<typeof Anthropic.RateLimitError>;
    expect(e.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(modelCalls(fake)).toHaveLength(2);
    const event = await eventFor(t, e.headers.get('x-request-id'));
    expect(event.type).toBe(FAILED);
    expect(event.data).toMatchObject({ errorCode: 'rate_limited', httpStatus: 429, attempts: 2 });
  });

  it('when the upstream reports an error mid-stream, then the SDK stream rejects instead of hanging', async () => {
    fake.script({ kind: 'stream-error', afterChunks: 2, chunks: ['one ', 'two ', 'three'] });
    const stream = client.messages.stream({ model: 'claude', max_tokens: 64, messages: ask('x') });
    const deltas: string[] = [];
    stream.on('text', (d) => deltas.push(d));
    const error = await stream.finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(deltas.join('')).toBe('one two ');
  });
});

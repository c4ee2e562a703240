import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from '../fakes/index.js';
import { bodyOf, COMPLETED, eventFor, lastCall, modelCalls } from './helpers.js';

const UPSTREAM_KEY = 'sk-fake-openai-upstream-0123456789';

let fake: FakeProvider;
let t: TestGateway;
let key: string;
let client: OpenAI;

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
} as const;

beforeAll(async () => {
  fake = await startFakeProvider({ kind: 'openai', apiKey: UPSTREAM_KEY });
  t = await startTestGateway({
    overrides: {
      providers: { openai: { kind: 'openai', baseUrl: `${fake.url}/v1`, apiKey: UPSTREAM_KEY } },
      models: {
        chat: { deployments: [{ provider: 'openai', model: 'gpt-4o' }] },
        busy: {
          deployments: [
            { provider: 'openai', model: 'gpt-4o' },
            { provider: 'openai', model: 'gpt-4o-mini' },
          ],
        },
        embed: { deployments: [{ provider: 'openai', model: 'text-embedding-3-small' }] },
      },
      routing: { maxAttempts: 2, retryBaseMs: 1, retryMaxMs: 20 },
    },
  });
  key = (await t.createKey({ name: 'openai-sdk' })).key;
  // The SDK's own retries would hide what the gateway answered.
  client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 });
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
});

beforeEach(() => fake.reset());

describe('the OpenAI SDK against the gateway', () => {
  it('when a chat completion is not streamed, then the SDK gets the answer, exact usage with cached tokens and the routing headers', async () => {
    fake.script({
      kind: 'reply',
      text: 'Paris is the capital.',
      usage: { input: 40, output: 6, cached: 32 },
    });
    const { data, response } = await client.chat.completions
      .create({
        model: 'chat',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Capital of France?' },
        ],
        temperature: 0.2,
      })
      .withResponse();

    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe('chat');
    expect(data.choices[0]?.message).toMatchObject({ role: 'assistant', content: 'Paris is the capital.' });
    expect(data.choices[0]?.finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({
      prompt_tokens: 40,
      completion_tokens: 6,
      total_tokens: 46,
      prompt_tokens_details: { cached_tokens: 32 },
    });
    expect(response.headers.get('x-flowloom-deployment')).toBe('openai/gpt-4o');
    expect(response.headers.get('x-flowloom-attempts')).toBe('1');
    expect(response.headers.get('x-request-id')).toBeTruthy();

    const upstream = bodyOf(lastCall(fake));
    expect(upstream.model).toBe('gpt-4o');
    expect(upstream.temperature).toBe(0.2);
    expect(upstream.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Capital of France?' },
    ]);

    const event = await eventFor(t, response.headers.get('x-request-id'));
    expect(event.type).toBe(COMPLETED);
    expect(event.data).toMatchObject({
      api: 'openai',
      stream: false,
      deployment: 'openai/gpt-4o',
      usage: { inputTokens: 40, outputTokens: 6, cachedInputTokens: 32 },
    });
  });

  it('when a chat completion is streamed with include_usage, then the deltas join into the text and the last chunk carries exact usage', async () => {
    fake.script({
      kind: 'reply',
      chunks: ['One ', 'two ', 'three.'],
      usage: { input: 25, output: 3, cached: 16 },
    });
    const { data: stream, response } = await client.chat.completions
      .create({
        model: 'chat',
        messages: [{ role: 'user', content: 'Count to three' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    expect(response.headers.get('x-flowloom-deployment')).toBe('openai/gpt-4o');

    let text = '';
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      const choice = chunk.choices[0];
      text += choice?.delta.content ?? '';
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) {
        expect(chunk.choices).toEqual([]);
        usage = chunk.usage;
      }
    }
    expect(chunks).toBeGreaterThanOrEqual(4);
    expect(text).toBe('One two three.');
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({
      prompt_tokens: 25,
      completion_tokens: 3,
      total_tokens: 28,
      prompt_tokens_details: { cached_tokens: 16 },
    });

    const upstream = bodyOf(lastCall(fake));
    expect(upstream.stream).toBe(true);
    expect(upstream.stream_options).toEqual({ include_usage: true });
    const event = await eventFor(t, response.headers.get('x-request-id'));
    expect(event.type).toBe(COMPLETED);
    expect(event.data).toMatchObject({
      stream: true,
      usage: { inputTokens: 25, outputTokens: 3, cachedInputTokens: 16 },
    });
  });

  it('when a streamed answer is read without include_usage, then no usage chunk is sent but the event still has exact usage', async () => {
    fake.script({ kind: 'reply', text: 'quiet answer', usage: { input: 9, output: 2 } });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], stream: true })
      .withResponse();
    const usages: unknown[] = [];
    for await (const chunk of stream) if (chunk.usage) usages.push(chunk.usage);
    expect(usages).toEqual([]);
    const event = await eventFor(t, response.headers.get('x-request-id'));
    expect(event.data).toMatchObject({ usage: { inputTokens: 9, outputTokens: 2 } });
  });

  it('when the model calls tools, then the non-streamed answer carries the tool calls and the tools went upstream', async () => {
    fake.script({
      kind: 'reply',
      toolCalls: [
        { name: 'get_weather', arguments: { city: 'Paris', unit: 'c' }, id: 'call_paris' },
        { name: 'get_weather', arguments: { city: 'Oslo' }, id: 'call_oslo' },
      ],
    });
    const completion = await client.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'Weather in Paris and Oslo?' }],
      tools: [weather],
      tool_choice: 'auto',
    });
    const message = completion.choices[0]?.message;
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(message?.tool_calls).toHaveLength(2);
    const calls = (message?.tool_calls ?? []).map((c) =>
      c.type === 'function' ? { id: c.id, name: c.function.name, args: JSON.parse(c.function.arguments) } : c,
    );
    expect(calls).toEqual([
      { id: 'call_paris', name: 'get_weather', args: { city: 'Paris', unit: 'c' } },
      { id: 'call_oslo', name: 'get_weather', args: { city: 'Oslo' } },
    ]);
    const upstream = bodyOf(lastCall(fake));
    expect(upstream.tools).toEqual([weather]);
    expect(upstream.tool_choice).toBe('auto');
  });

  it('when tool call arguments are streamed in fragments, then the SDK stream helper reassembles them', async () => {
    fake.script({
      kind: 'reply',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Reykjavík', unit: 'f' }, fragments: 5 }],
      usage: { input: 30, output: 12 },
    });
    const stream = client.chat.completions.stream({
      model: 'chat',
      messages: [{ role: 'user', content: 'Weather in Reykjavík?' }],
      tools: [weather],
      stream_options: { include_usage: true },
    });
    const fragments: string[] = [];
    stream.on('tool_calls.function.arguments.delta', (event) => fragments.push(event.arguments_delta));
    const final = await stream.finalChatCompletion();
    expect(fragments.length).toBeGreaterThanOrEqual(2);
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call?.type).toBe('function');
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.id).toMatch(/^call_/);
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Reykjavík', unit: 'f' });
    expect(fragments.join('')).toBe(call.function.arguments);
    expect(final.usage).toMatchObject({ prompt_tokens: 30, completion_tokens: 12 });
  });

  it('when a tool result is sent back, then the transcript reaches upstream with the call and its result', async () => {
    fake.script({ kind: 'reply', text: 'It is 12°C in Paris.' });
    const completion = await client.chat.completions.create({
      model: 'chat',
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp":12}' },
      ],
    });
    expect(completion.choices[0]?.message.content).toBe('It is 12°C in Paris.');
    const messages = bodyOf(lastCall(fake)).messages as Array<Record<string, unknown>>;
    expect(messages[1]).toMatchObject({
      role: 'assistant',
      tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      ],
    });
    expect(messages[2]).toEqual({ role: 'tool', tool_call_id: 'call_1', content: '{"temp":12}' });
  });

  it('when response_format is json_object, then it is forwarded upstream', async () => {
    fake.script({ kind: 'reply', text: '{"ok":true}' });
    const completion = await client.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'Answer in JSON' }],
      response_format: { type: 'json_object' },
    });
    expect(JSON.parse(completion.choices[0]?.message.content ?? '')).toEqual({ ok: true });
    expect(bodyOf(lastCall(fake)).response_format).toEqual({ type: 'json_object' });
  });

  it('when response_format is json_schema, then the schema, name and strict flag are forwarded upstream', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, population: { type: 'integer' } },
      required: ['city', 'population'],
      additionalProperties: false,
    };
    fake.script({ kind: 'reply', text: '{"city":"Paris","population":2100000}' });
    const completion = await client.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'Largest French city' }],
      response_format: { type: 'json_schema', json_schema: { name: 'city', schema, strict: true } },
    });
    expect(JSON.parse(completion.choices[0]?.message.content ?? '')).toEqual({
      city: 'Paris',
      population: 2100000,
    });
    expect(bodyOf(lastCall(fake)).response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'city', schema, strict: true },
    });
  });

  it('when the model is unknown, then the SDK throws NotFoundError and nothing goes upstream', async () => {
    const error = await client.chat.completions
      .create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    const e = error as InstanceType<typeof OpenAI.NotFoundError>;
    expect(e.status).toBe(404);
    expect(e.code).toBe('model_not_found');
    expect(e.requestID).toBeTruthy();
    expect(modelCalls(fake)).toHaveLength(0);
  });

  it('when the key is wrong, then the SDK throws AuthenticationError and nothing goes upstream', async () => {
    const stranger = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'flk_not-a-real-key', maxRetries: 0 });
    const error = await stranger.chat.completions
      .create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
    expect(modelCalls(fake)).toHaveLength(0);
  });

  it('when every deployment answers 429, then the SDK throws RateLimitError with a retry-after', async () => {
    fake.script({ kind: 'error', status: 429, retryAfter: 0 }, { kind: 'error', status: 429, retryAfter: 0 });
    const error = await client.chat.completions
      .create({ model: 'busy', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const e = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.status).toBe(429);
    expect(e.code).toBe('rate_limited');
    expect(e.headers.get('retry-after')).not.toBeNull();
    expect(modelCalls(fake).map((r) => bodyOf(r).model)).toEqual(['gpt-4o', 'gpt-4o-mini']);
  });

  it('when a streamed request hits 429 everywhere before its first byte, then the SDK throws RateLimitError too', async () => {
    fake.script({ kind: 'error', status: 429 }, { kind: 'error', status: 429 });
    const error = await client.chat.completions
      .create({ model: 'busy', messages: [{ role: 'user', content: 'hi' }], stream: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
  });

  it('when embeddings are requested (base64 by default in the SDK), then the vectors and usage come back', async () => {
    const { data, response } = await client.embeddings
      .create({ model: 'embed', input: ['first text', 'second text'] })
      .withResponse();
    expect(data.data).toHaveLength(2);
    expect(data.data.map((d) => d.index)).toEqual([0, 1]);
    expect(data.data[0]?.embedding).toHaveLength(1536);
    expect(data.data[0]?.embedding.every((x) => Number.isFinite(x))).toBe(true);
    expect(data.data[0]?.embedding).not.toEqual(data.data[1]?.embedding);
    expect(data.usage.prompt_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-flowloom-deployment')).toBe('openai/text-embedding-3-small');
    const upstream = bodyOf(lastCall(fake));
    expect(upstream.model).toBe('text-embedding-3-small');
    expect(upstream.input).toEqual(['first text', 'second text']);

    const floats = await client.embeddings.create({
      model: 'embed',
      input: 'first text',
      encoding_format: 'float',
    });
    expect(floats.data[0]?.embedding).toEqual(data.data[0]?.embedding);
  });

  it('when the models are listed, then every alias and the local model are there', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(expect.arrayContaining(['chat', 'busy', 'embed', 'flowloom-local']));
    expect(modelCalls(fake)).toHaveLength(0);
  });

  it('when a key may use only some models, then the list shows only those and other models are refused', async () => {
    const narrow = (await t.createKey({ name: 'narrow', models: ['chat'] })).key;
    const limited = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: narrow, maxRetries: 0 });
    const ids: string[] = [];
    for await (const model of limited.models.list()) ids.push(model.id);
    expect(ids).toEqual(['chat']);
    const error = await limited.chat.completions
      .create({ model: 'busy', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
  });

  it('when the upstream rejects the credential, then the caller gets a 502 that never echoes the credential', async () => {
    fake.setDefault({ kind: 'error', status: 401 });
    const raw = await t.post(
      '/v1/chat/completions',
      { model: 'chat', messages: [{ role: 'user', content: 'x' }] },
      key,
    );
    expect(lastCall(fake).headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(raw.status).toBe(502);
    expect(raw.body).toMatchObject({ error: { type: 'api_error', code: 'upstream_error' } });
    expect(raw.text).not.toContain(UPSTREAM_KEY);
    expect(raw.text).not.toContain(UPSTREAM_KEY.slice(-6));
    expect(JSON.stringify(Object.fromEntries(raw.headers))).not.toContain(UPSTREAM_KEY.slice(-6));
  });
});

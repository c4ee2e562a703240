import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from './index.js';

const API_KEY = 'sk-test-fake-openai-key-0001';

describe('fake OpenAI upstream driven by the official openai SDK', () => {
  let fake: FakeProvider;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeProvider({ kind: 'openai', apiKey: API_KEY });
    client = new OpenAI({ apiKey: API_KEY, baseURL: `${fake.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.reset();
  });

  it('when a chat completion is not streamed, then the SDK parses text, usage with cached tokens and the request id', async () => {
    fake.script({
      kind: 'reply',
      text: 'Hello from the fake.',
      usage: { input: 1200, output: 6, cached: 1024 },
    });

    const { data, request_id } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello' }] })
      .withResponse();

    expect(data.object).toBe('chat.completion');
    expect(data.id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(data.model).toBe('gpt-4o-mini');
    expect(data.choices[0]?.message).toMatchObject({ role: 'assistant', content: 'Hello from the fake.' });
    expect(data.choices[0]?.finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({
      prompt_tokens: 1200,
      completion_tokens: 6,
      total_tokens: 1206,
      prompt_tokens_details: { cached_tokens: 1024 },
    });
    expect(request_id).toMatch(/^req_[0-9a-f]{32}$/);

    const recorded = fake.requests.at(-1);
    expect(recorded?.path).toBe('/v1/chat/completions');
    expect(recorded?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(recorded?.body).toMatchObject({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hello' }],
    });
  });

  it('when nothing is scripted, then the answer is a deterministic echo with plausible token counts', async () => {
    const ask = () =>
      client.chat.completions.create({
        model: 'gpt-4o',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'What is the capital of France?' },
        ],
      });
    const first = await ask();
    const second = await ask();

    expect(first.choices[0]?.message.content).toBe(second.choices[0]?.message.content);
    expect(first.choices[0]?.message.content).toContain('What is the capital of France?');
    expect(first.usage?.prompt_tokens).toBeGreaterThan(5);
    expect(first.usage?.completion_tokens).toBeGreaterThan(3);
    expect(first.usage?.total_tokens).toBe(
      (first.usage?.prompt_tokens ?? 0) + (first.usage?.completion_tokens ?? 0),
    );
  });

  it('when a completion is streamed with include_usage, then chunks start with the role, carry the text and end with a usage chunk', async () => {
    fake.script({
      kind: 'reply',
      chunks: ['Hel', 'lo', ' world'],
      usage: { input: 50, output: 3, cached: 32 },
    });

    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe('Hello world');
    const withFinish = chunks.filter((chunk) => chunk.choices[0]?.finish_reason);
    expect(withFinish.map((chunk) => chunk.choices[0]?.finish_reason)).toEqual(['stop']);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({
      prompt_tokens: 50,
      completion_tokens: 3,
      total_tokens: 53,
      prompt_tokens_details: { cached_tokens: 32 },
    });
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
  });

  it('when a stream is asked without include_usage, then no chunk carries a usage field', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.some((chunk) => 'usage' in chunk)).toBe(false);
  });

  it('when tool calls are streamed, then deltas carry index, id and name first, then argument fragments the SDK reassembles', async () => {
    fake.script({
      kind: 'reply',
      toolCalls: [
        { name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' }, fragments: 4 },
        { name: 'get_time', arguments: { zone: 'Europe/Paris' } },
      ],
    });

    const stream = client.chat.completions.stream({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Weather and time in Paris?' }],
      tools: [
        { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } },
        { type: 'function', function: { name: 'get_time', parameters: { type: 'object' } } },
      ],
    });
    const chunks: ChatCompletionChunk[] = [];
    stream.on('chunk', (chunk) => chunks.push(chunk));
    const final = await stream.finalChatCompletion();

    const message = final.choices[0]?.message;
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(message?.content).toBeNull();
    const calls = message?.tool_calls ?? [];
    expect(calls).toHaveLength(2);
    const [weather, time] = calls;
    expect(weather?.type === 'function' && weather.function.name).toBe('get_weather');
    expect(weather?.type === 'function' && JSON.parse(weather.function.arguments)).toEqual({
      city: 'Paris',
      unit: 'celsius',
    });
    expect(time?.type === 'function' && JSON.parse(time.function.arguments)).toEqual({
      zone: 'Europe/Paris',
    });
    expect(weather?.id).toMatch(/^call_[A-Za-z0-9]{24}$/);

    const toolDeltas = chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);
    const firstForWeather = toolDeltas.find((delta) => delta.index === 0);
    expect(firstForWeather).toMatchObject({
      index: 0,
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    expect(firstForWeather?.id).toBe(weather?.id);
    const weatherFragments = toolDeltas.filter((delta) => delta.index === 0 && delta.id === undefined);
    expect(weatherFragments).toHaveLength(4);
    expect(weatherFragments.every((delta) => delta.function?.name === undefined)).toBe(true);
  });

  it('when tool calls are not streamed, then the message holds them with JSON-string arguments', async () => {
    fake.script({ kind: 'reply', toolCalls: [{ name: 'lookup', arguments: { id: 42 }, id: 'call_fixed' }] });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'look up 42' }],
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call).toEqual({
      id: 'call_fixed',
      type: 'function',
      function: { name: 'lookup', arguments: '{"id":42}' },
    });
  });

  it('when the answer is cut by the token limit, then finish_reason is length', async () => {
    fake.script({ kind: 'reply', text: 'Once upon a', finish: 'length' });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o',
      max_tokens: 3,
      messages: [{ role: 'user', content: 'tell a story' }],
    });
    expect(completion.choices[0]?.finish_reason).toBe('length');
  });

  it('when rate limited, then the SDK raises RateLimitError with the provider body and retry-after', async () => {
    fake.script({ kind: 'error', status: 429, retryAfter: 7 });
    const error = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimit = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimit.status).toBe(429);
    expect(rateLimit.code).toBe('rate_limit_exceeded');
    expect(rateLimit.type).toBe('requests');
    expect(rateLimit.headers?.get('retry-after')).toBe('7');
    expect(rateLimit.requestID).toMatch(/^req_/);
  });

  it('when the SDK may retry, then it honours retry-after and the second attempt succeeds', async () => {
    const retrying = new OpenAI({ apiKey: API_KEY, baseURL: `${fake.url}/v1`, maxRetries: 1 });
    fake.script({ kind: 'error', status: 429, retryAfter: 0 }, { kind: 'reply', text: 'second time lucky' });
    const completion = await retrying.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(completion.choices[0]?.message.content).toBe('second time lucky');
    expect(fake.requests.map((request) => request.status)).toEqual([429, 200]);
    expect(fake.requests[1]?.headers['x-stainless-retry-count']).toBe('1');
  });

  it('when the key is wrong, the model unknown, or the server fails, then the SDK raises the matching error class', async () => {
    const wrongKey = new OpenAI({
      apiKey: 'sk-wrong-key-123456789',
      baseURL: `${fake.url}/v1`,
      maxRetries: 0,
    });
    const auth = await wrongKey.models.list().catch((caught: unknown) => caught);
    expect(auth).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((auth as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');

    const missing = await client.chat.completions
      .create({ model: 'gpt-9-ultra', messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    expect((missing as Error).message).toContain('gpt-9-ultra');

    fake.script({ kind: 'error', status: 500 }, { kind: 'error', status: 503 });
    for (const status of [500, 503]) {
      const failed = await client.chat.completions
        .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
        .catch((caught: unknown) => caught);
      expect(failed).toBeInstanceOf(OpenAI.InternalServerError);
      expect((failed as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(status);
      expect((failed as InstanceType<typeof OpenAI.InternalServerError>).type).toBe('server_error');
    }
  });

  it('when the request body is not JSON or lacks messages, then the answer is a 400 in OpenAI form', async () => {
    const broken = await fetch(`${fake.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: '{"model": "gpt-4o",',
    });
    expect(broken.status).toBe(400);
    expect(broken.headers.get('x-request-id')).toMatch(/^req_/);
    const body = (await broken.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error['type']).toBe('invalid_request_error');

    const noMessages = await client.chat.completions
      .create({ model: 'gpt-4o' } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .catch((caught: unknown) => caught);
    expect(noMessages).toBeInstanceOf(OpenAI.BadRequestError);
    expect((noMessages as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('messages');
  });

  it('when the stream fails midway with an error frame, then the SDK raises an APIError', async () => {
    fake.script({ kind: 'stream-error', afterChunks: 2, chunks: ['a', 'b', 'c', 'd'] });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
    })().catch((caught: unknown) => caught);
    expect(seen.join('')).toBe('ab');
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as Error).message).toContain('The server had an error');
  });

  it('when the connection drops midway through a stream, then the SDK iteration fails after the chunks sent', async () => {
    fake.script({ kind: 'disconnect', afterChunks: 1, chunks: ['first', ' second'] });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
    })().catch((caught: unknown) => caught);
    expect(seen.join('')).toBe('first');
    expect(error).toBeInstanceOf(Error);
    expect(fake.requests.at(-1)?.aborted).toBe(false);
  });

  it('when the upstream sends garbage, then the SDK fails to parse it, streamed or not', async () => {
    fake.script({ kind: 'garbage' }, { kind: 'garbage' });
    const plain = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(plain).toBeInstanceOf(SyntaxError);

    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    const streamed = await (async () => {
      for await (const _chunk of stream) {
        // drain
      }
    })().catch((caught: unknown) => caught);
    expect(streamed).toBeInstanceOf(Error);
  });

  it('when the upstream hangs and the client aborts, then the SDK reports the abort and the fake records it', async () => {
    fake.script({ kind: 'hang' });
    const controller = new AbortController();
    const pending = client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, { signal: controller.signal })
      .catch((caught: unknown) => caught);
    await fake.waitFor((request) => request.path === '/v1/chat/completions');
    controller.abort();

    expect(await pending).toBeInstanceOf(OpenAI.APIUserAbortError);
    const aborted = await fake.waitForAbort();
    expect(aborted.behaviour).toBe('hang');
    expect(aborted.completed).toBe(false);
    expect(fake.stats.aborted).toBeGreaterThanOrEqual(1);
  });

  it('when a stream hangs after some chunks and the consumer stops, then the fake sees the abort', async () => {
    fake.script({ kind: 'hang', afterChunks: 2, chunks: ['one', ' two', ' three'] });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (text === 'one two') break;
    }
    expect(text).toBe('one two');
    const aborted = await fake.waitForAbort();
    expect(aborted.status).toBe(200);
  });

  it('when the upstream is slower than the client timeout, then the SDK raises a timeout error', async () => {
    fake.script({ kind: 'reply', delayMs: 1_000 });
    const error = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, { timeout: 100 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    await fake.waitForAbort();
  });

  it('when embeddings are asked, then the SDK decodes the default base64 and float answers alike', async () => {
    const base64 = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['alpha', 'beta'],
    });
    expect(fake.requests.at(-1)?.body).toMatchObject({ encoding_format: 'base64' });
    expect(base64.object).toBe('list');
    expect(base64.data).toHaveLength(2);
    expect(base64.data[0]?.embedding).toHaveLength(1536);
    expect(base64.usage.prompt_tokens).toBeGreaterThan(0);

    const floats = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: 'alpha',
      encoding_format: 'float',
    });
    const decoded = base64.data[0]?.embedding ?? [];
    const plain = floats.data[0]?.embedding ?? [];
    expect(plain).toHaveLength(1536);
    expect(plain.slice(0, 8).map((value) => value.toFixed(5))).toEqual(
      decoded.slice(0, 8).map((value) => value.toFixed(5)),
    );
    const norm = Math.sqrt(plain.reduce((sum, value) => sum + value * value, 0));
    expect(norm).toBeCloseTo(1, 4);

    const shortened = await client.embeddings.create({
      model: 'text-embedding-3-large',
      input: 'alpha',
      dimensions: 256,
    });
    expect(shortened.data[0]?.embedding).toHaveLength(256);
  });

  it('when models are listed or retrieved, then the SDK pages through them and 404s an unknown one', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toContain('gpt-4o');
    expect(await client.models.retrieve('gpt-4o')).toMatchObject({ id: 'gpt-4o', object: 'model' });
    await expect(client.models.retrieve('nope')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

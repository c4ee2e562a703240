import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from './index.js';

const API_KEY = 'sk-ant-test-fake-0001';
const MODEL = 'claude-sonnet-4-6';

type RawEvent = Anthropic.RawMessageStreamEvent;

describe('fake Anthropic upstream driven by the official @anthropic-ai/sdk', () => {
  let fake: FakeProvider;
  let client: Anthropic;

  beforeAll(async () => {
    fake = await startFakeProvider({ kind: 'anthropic', apiKey: API_KEY });
    client = new Anthropic({ apiKey: API_KEY, baseURL: fake.url, maxRetries: 0 });
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.reset();
  });

  it('when a message is not streamed, then the SDK parses the text block, stop reason, cache usage and request id', async () => {
    fake.script({
      kind: 'reply',
      text: 'Bonjour.',
      usage: { input: 2100, output: 5, cached: 2000, cacheWrite: 50 },
    });
    const message = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      system: 'Answer in French.',
      messages: [{ role: 'user', content: 'Say hello' }],
    });

    expect(message.type).toBe('message');
    expect(message.role).toBe('assistant');
    expect(message.id).toMatch(/^msg_01[A-Za-z0-9]{22}$/);
    expect(message.content).toEqual([{ type: 'text', text: 'Bonjour.' }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.stop_sequence).toBeNull();
    expect(message.usage).toMatchObject({
      input_tokens: 50,
      cache_read_input_tokens: 2000,
      cache_creation_input_tokens: 50,
      output_tokens: 5,
    });
    expect(message._request_id).toMatch(/^req_011C/);

    const recorded = fake.requests.at(-1);
    expect(recorded?.headers['x-api-key']).toBe(API_KEY);
    expect(recorded?.headers['anthropic-version']).toBe('2023-06-01');
    expect(recorded?.body).toMatchObject({ model: MODEL, max_tokens: 64, system: 'Answer in French.' });
  });

  it('when a message is streamed, then the events follow message_start, block start, deltas, block stop, message_delta, message_stop', async () => {
    fake.script({ kind: 'reply', chunks: ['Hel', 'lo'], usage: { input: 30, output: 2, cached: 20 } });
    const stream = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    const events: RawEvent[] = [];
    for await (const event of stream) events.push(event);

    expect(events.map((event) => event.type)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const start = events[0];
    expect(start?.type === 'message_start' && start.message.usage).toMatchObject({
      input_tokens: 10,
      cache_read_input_tokens: 20,
    });
    const delta = events[5];
    expect(delta?.type === 'message_delta' && delta.delta.stop_reason).toBe('end_turn');
    expect(delta?.type === 'message_delta' && delta.usage.output_tokens).toBe(2);
  });

  it('when streamed on the wire, then every event has an event line and a ping follows the first block start', async () => {
    const response = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'x-api-key': API_KEY,
        'anthropic-version': '2023-06-01',
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        model: MODEL,
        max_tokens: 10,
        stream: true,
        messages: [{ role: 'user', content: 'x' }],
      }),
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    const text = await response.text();
    const frames = text.split('\n\n').filter((frame) => frame.length > 0);
    const names = frames.map((frame) => /^event: (\w+)\ndata: \{/.exec(frame)?.[1]);
    expect(names.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
    expect(names.at(-1)).toBe('message_stop');
    expect(names.every((name) => name !== undefined)).toBe(true);
  });

  it('when tool use is streamed, then the stream helper assembles input_json_delta fragments into the tool input', async () => {
    fake.script({
      kind: 'reply',
      text: 'Let me check.',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Lyon', days: 3 }, fragments: 5 }],
      usage: { input: 400, output: 40 },
    });
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 256,
      tools: [{ name: 'get_weather', input_schema: { type: 'object' } }],
      messages: [{ role: 'user', content: 'Weather in Lyon?' }],
    });
    const fragments: string[] = [];
    stream.on('inputJson', (partial) => fragments.push(partial));
    const final = await stream.finalMessage();

    expect(final.stop_reason).toBe('tool_use');
    expect(final.content[0]).toMatchObject({ type: 'text', text: 'Let me check.' });
    const tool = final.content[1];
    expect(tool?.type).toBe('tool_use');
    expect(tool?.type === 'tool_use' && tool.name).toBe('get_weather');
    expect(tool?.type === 'tool_use' && tool.input).toEqual({ city: 'Lyon', days: 3 });
    expect(tool?.type === 'tool_use' && tool.id).toMatch(/^toolu_01/);
    expect(fragments.filter((fragment) => fragment.length > 0)).toHaveLength(5);
    expect(final.usage.output_tokens).toBe(40);
    expect(final.usage.input_tokens).toBe(400);
  });

  it('when tool use is not streamed, then the content holds a tool_use block with an object input', async () => {
    fake.script({
      kind: 'reply',
      toolCalls: [{ name: 'lookup', arguments: { id: 7 }, id: 'toolu_01fixed' }],
    });
    const message = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'look up 7' }],
    });
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toEqual([
      { type: 'tool_use', id: 'toolu_01fixed', name: 'lookup', input: { id: 7 } },
    ]);
  });

  it('when the answer stops on max_tokens or a stop sequence, then stop_reason and stop_sequence say so', async () => {
    fake.script(
      { kind: 'reply', text: 'Once', finish: 'length' },
      { kind: 'reply', text: 'One, two', finish: 'stop_sequence', stopSequence: 'three' },
    );
    const cut = await client.messages.create({
      model: MODEL,
      max_tokens: 1,
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(cut.stop_reason).toBe('max_tokens');
    const stopped = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      stop_sequences: ['three'],
      messages: [{ role: 'user', content: 'count' }],
    });
    expect(stopped.stop_reason).toBe('stop_sequence');
    expect(stopped.stop_sequence).toBe('three');
  });

  it('when rate limited or overloaded, then the SDK raises RateLimitError or a 529 with the Anthropic error body', async () => {
    fake.script({ kind: 'error', status: 429, retryAfter: 12 }, { kind: 'error', status: 529 });
    const limited = await client.messages
      .create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    const rateLimit = limited as InstanceType<typeof Anthropic.RateLimitError>;
    expect(rateLimit.headers?.get('retry-after')).toBe('12');
    expect(rateLimit.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(rateLimit.requestID).toMatch(/^req_/);

    const overloaded = await client.messages
      .create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(overloaded).toBeInstanceOf(Anthropic.InternalServerError);
    expect((overloaded as InstanceType<typeof Anthropic.InternalServerError>).status).toBe(529);
    expect((overloaded as InstanceType<typeof Anthropic.InternalServerError>).error).toMatchObject({
      error: { type: 'overloaded_error', message: 'Overloaded' },
    });
  });

  it('when the key is wrong, the model unknown, or a field missing, then the SDK raises the matching error', async () => {
    const wrong = new Anthropic({ apiKey: 'sk-ant-wrong', baseURL: fake.url, maxRetries: 0 });
    await expect(
      wrong.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);

    const unknown = await client.messages
      .create({ model: 'claude-9-opus', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(unknown).toBeInstanceOf(Anthropic.NotFoundError);
    expect((unknown as InstanceType<typeof Anthropic.NotFoundError>).error).toMatchObject({
      error: { type: 'not_found_error', message: 'model: claude-9-opus' },
    });

    const noMax = await client.messages
      .create({
        model: MODEL,
        messages: [{ role: 'user', content: 'x' }],
      } as unknown as Anthropic.MessageCreateParamsNonStreaming)
      .catch((caught: unknown) => caught);
    expect(noMax).toBeInstanceOf(Anthropic.BadRequestError);
    expect((noMax as Error).message).toContain('max_tokens');
  });

  it('when the anthropic-version header is missing, then the API answers 400 invalid_request_error', async () => {
    const response = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error).toEqual({
      type: 'invalid_request_error',
      message: 'anthropic-version: header is required',
    });
  });

  it('when an error event arrives mid-stream, then the SDK raises an APIError of that type after the text sent', async () => {
    fake.script({ kind: 'stream-error', afterChunks: 1, chunks: ['par', 'tial'] });
    const stream = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    let text = '';
    const error = await (async () => {
      for await (const event of stream) {
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta')
          text += event.delta.text;
      }
    })().catch((caught: unknown) => caught);
    expect(text).toBe('par');
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).type).toBe('overloaded_error');
  });

  it('when a stream error is scripted for a non-streamed call, then it becomes a plain 529 overloaded_error', async () => {
    fake.script({ kind: 'stream-error', afterChunks: 0 });
    const error = await client.messages
      .create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.InternalServerError);
    expect((error as InstanceType<typeof Anthropic.InternalServerError>).status).toBe(529);
  });

  it('when the stream hangs and the client aborts, then the SDK stops and the fake records the abort', async () => {
    fake.script({ kind: 'hang', afterChunks: 1, chunks: ['first', ' never'] });
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'x' }],
    });
    const firstText = new Promise<string>((resolve) => stream.on('text', (delta) => resolve(delta)));
    expect(await firstText).toBe('first');
    stream.abort();
    await expect(stream.finalMessage()).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);
    const aborted = await fake.waitForAbort();
    expect(aborted.path).toBe('/v1/messages');
  });

  it('when models are listed, then the SDK pages through the fake list', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toContain(MODEL);
  });

  describe('extended thinking', () => {
    const thinking = { type: 'enabled', budget_tokens: 2048 } as const;

    it('when thinking is scripted and the answer streams, then the documented event sequence is sent', async () => {
      fake.script({
        kind: 'reply',
        thinking: [{ thinking: 'Let me think.', chunks: ['Let me', ' think.'], signature: 'EqQBsig1' }],
        chunks: ['Done.'],
        usage: { input: 40, output: 30, reasoning: 20 },
      });
      const stream = await client.messages.create({
        model: MODEL,
        max_tokens: 4096,
        thinking,
        messages: [{ role: 'user', content: 'x' }],
        stream: true,
      });
      const events: RawEvent[] = [];
      for await (const event of stream) events.push(event);
      expect(events.map((e) => (e.type === 'content_block_delta' ? e.delta.type : e.type))).toEqual([
        'message_start',
        'content_block_start',
        'thinking_delta',
        'thinking_delta',
        'signature_delta',
        'content_block_stop',
        'content_block_start',
        'text_delta',
        'content_block_stop',
        'message_delta',
        'message_stop',
      ]);
      expect(events[1]).toEqual({
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'thinking', thinking: '', signature: '' },
      });
      expect(events[4]).toEqual({
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'signature_delta', signature: 'EqQBsig1' },
      });
      expect(events[6]).toMatchObject({ type: 'content_block_start', index: 1 });
      expect(events.at(-2)).toMatchObject({
        type: 'message_delta',
        usage: { output_tokens: 30, output_tokens_details: { thinking_tokens: 20 } },
      });
    });

    it('when thinking and redacted thinking are scripted, then the SDK accumulates both blocks unchanged', async () => {
      fake.script({
        kind: 'reply',
        thinking: [{ thinking: 'Plan: answer.', signature: 'EqQBsig2' }, { redacted: 'EmwKAhgBEgyRedacted' }],
        text: 'Answer.',
        usage: { cached: 10, cacheWrite: 5, input: 50 },
      });
      const message = await client.messages
        .stream({ model: MODEL, max_tokens: 4096, thinking, messages: [{ role: 'user', content: 'x' }] })
        .finalMessage();
      expect(message.content).toEqual([
        { type: 'thinking', thinking: 'Plan: answer.', signature: 'EqQBsig2' },
        { type: 'redacted_thinking', data: 'EmwKAhgBEgyRedacted' },
        { type: 'text', text: 'Answer.' },
      ]);
      expect(message.usage).toMatchObject({
        input_tokens: 35,
        cache_read_input_tokens: 10,
        cache_creation_input_tokens: 5,
      });
      const plain = await (async () => {
        fake.script({
          kind: 'reply',
          thinking: [{ thinking: 'Plan: answer.', signature: 'EqQBsig2' }],
          text: 'Answer.',
        });
        return client.messages.create({
          model: MODEL,
          max_tokens: 4096,
          thinking,
          messages: [{ role: 'user', content: 'x' }],
        });
      })();
      expect(plain.content[0]).toEqual({
        type: 'thinking',
        thinking: 'Plan: answer.',
        signature: 'EqQBsig2',
      });
      expect(plain.usage.output_tokens_details?.thinking_tokens).toBeGreaterThan(0);
    });

    it('when budget_tokens is below 1024 or not below max_tokens, then the fake answers 400 as the API does', async () => {
      const low = await client.messages
        .create({
          model: MODEL,
          max_tokens: 4096,
          thinking: { type: 'enabled', budget_tokens: 512 },
          messages: [{ role: 'user', content: 'x' }],
        })
        .catch((caught: unknown) => caught);
      expect(low).toBeInstanceOf(Anthropic.BadRequestError);
      expect((low as Error).message).toContain('budget_tokens');
      const high = await client.messages
        .create({
          model: MODEL,
          max_tokens: 2048,
          thinking: { type: 'enabled', budget_tokens: 2048 },
          messages: [{ role: 'user', content: 'x' }],
        })
        .catch((caught: unknown) => caught);
      expect(high).toBeInstanceOf(Anthropic.BadRequestError);
      expect((high as Error).message).toContain('`max_tokens` must be greater than `thinking.budget_tokens`');
    });
  });
});

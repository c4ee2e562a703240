import Anthropic from '@anthropic-ai/sdk';
import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from '../fakes/index.js';
import { bodyOf, eventFor, lastCall } from './helpers.js';

// Every upstream credential is distinct, so a leak names its provider.
const KEYS = {
  openai: 'sk-fake-openai-cred-7f3a9c1e5b2d',
  anthropic: 'sk-ant-fake-cred-4e8d2b6a9c0f',
  gemini: 'AIza-fake-gemini-cred-1a2b3c4d5e',
  azure: 'azure-fake-cred-9e8d7c6b5a4f',
  vllm: 'vllm-fake-token-3c5e7a9b1d2f',
} as const;
const AZURE_API_VERSION = '2024-10-21';

let openaiFake: FakeProvider;
let anthropicFake: FakeProvider;
let geminiFake: FakeProvider;
let azureFake: FakeProvider;
let compatibleFake: FakeProvider;
let t: TestGateway;
let oai: OpenAI;
let ant: Anthropic;
let genai: GoogleGenAI;

const weatherParameters = {
  type: 'object',
  properties: { city: { type: 'string' } },
  required: ['city'],
};
const openaiWeather: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather in a city', parameters: weatherParameters },
};
const anthropicWeather: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

/** Fails when any upstream credential (or a recognisable tail of one) appears in what the caller received. */
function expectNoCredential(...seen: unknown[]): void {
  const text = seen.map((s) => (typeof s === 'string' ? s : JSON.stringify(s))).join('\n');
  for (const secret of Object.values(KEYS)) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain(secret.slice(-8));
  }
}

const headerText = (headers: Headers): string => JSON.stringify(Object.fromEntries(headers));

beforeAll(async () => {
  [openaiFake, anthropicFake, geminiFake, azureFake, compatibleFake] = await Promise.all([
    startFakeProvider({ kind: 'openai', apiKey: KEYS.openai }),
    startFakeProvider({ kind: 'anthropic', apiKey: KEYS.anthropic }),
    startFakeProvider({ kind: 'gemini', apiKey: KEYS.gemini }),
    startFakeProvider({ kind: 'azure', apiKey: KEYS.azure }),
    startFakeProvider({ kind: 'openai', apiKey: KEYS.vllm }),
  ]);
  t = await startTestGateway({
    overrides: {
      providers: {
        openai: { kind: 'openai', baseUrl: `${openaiFake.url}/v1`, apiKey: KEYS.openai },
        anthropic: { kind: 'anthropic', baseUrl: anthropicFake.url, apiKey: KEYS.anthropic },
        gemini: { kind: 'gemini', baseUrl: geminiFake.url, apiKey: KEYS.gemini },
        azure: { kind: 'azure', baseUrl: azureFake.url, apiKey: KEYS.azure, apiVersion: AZURE_API_VERSION },
        vllm: { kind: 'openai-compatible', baseUrl: `${compatibleFake.url}/v1`, apiKey: KEYS.vllm },
      },
      models: {
        'to-openai': { deployments: [{ provider: 'openai', model: 'gpt-4o' }] },
        'to-anthropic': { deployments: [{ provider: 'anthropic', model: 'claude-sonnet-4-5' }] },
        'to-gemini': { deployments: [{ provider: 'gemini', model: 'gemini-2.5-flash' }] },
        'to-azure': { deployments: [{ provider: 'azure', model: 'gpt-4o' }] },
        'to-compatible': { deployments: [{ provider: 'vllm', model: 'gpt-4o-mini' }] },
      },
      routing: { maxAttempts: 1 },
    },
  });
  const key = (await t.createKey({ name: 'translation' })).key;
  oai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 });
  ant = new Anthropic({ baseURL: t.url, apiKey: key, maxRetries: 0, timeout: 10_000 });
  genai = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: t.url } });
});

afterAll(async () => {
  await t?.close();
  await Promise.all(
    [openaiFake, anthropicFake, geminiFake, azureFake, compatibleFake].map((f) => f?.close()),
  );
});

beforeEach(() => {
  for (const fake of [openaiFake, anthropicFake, geminiFake, azureFake, compatibleFake]) fake.reset();
});

describe('OpenAI SDK → Anthropic upstream', () => {
  it('when a chat with a system message is sent, then Anthropic gets system lifted out and max_tokens, and the answer comes back in OpenAI format', async () => {
    anthropicFake.script({
      kind: 'reply',
      text: 'Hello from Claude',
      usage: { input: 50, output: 4, cached: 30 },
    });
    const { data, response } = await oai.chat.completions
      .create({
        model: 'to-anthropic',
        messages: [
          { role: 'system', content: 'Be terse.' },
          { role: 'user', content: 'Hi' },
        ],
        stop: ['STOP'],
      })
      .withResponse();

    const upstream = lastCall(anthropicFake);
    expect(upstream.path).toBe('/v1/messages');
    expect(upstream.headers['x-api-key']).toBe(KEYS.anthropic);
    expect(upstream.headers['anthropic-version']).toBeTruthy();
    const body = bodyOf(upstream);
    expect(body.model).toBe('claude-sonnet-4-5');
    expect(body.system).toBe('Be terse.');
    expect(body.max_tokens).toEqual(expect.any(Number));
    expect(body.stop_sequences).toEqual(['STOP']);
    expect(body.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }]);

    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]?.message.content).toBe('Hello from Claude');
    expect(data.choices[0]?.finish_reason).toBe('stop');
    // Anthropic's uncached input_tokens (20) plus the cache read (30) is the OpenAI prompt_tokens.
    expect(data.usage).toMatchObject({
      prompt_tokens: 50,
      completion_tokens: 4,
      prompt_tokens_details: { cached_tokens: 30 },
    });
    expect(response.headers.get('x-flowloom-deployment')).toBe('anthropic/claude-sonnet-4-5');
    expectNoCredential(data, headerText(response.headers));
  });

  it('when a streamed chat asks for tools, then Anthropic gets input_schema tools and the SDK reassembles the tool call', async () => {
    anthropicFake.script({
      kind: 'reply',
      text: 'Checking.',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Kyoto' }, fragments: 4 }],
      usage: { input: 60, output: 15, cached: 0 },
    });
    const stream = oai.chat.completions.stream({
      model: 'to-anthropic',
      messages: [{ role: 'user', content: 'Weather in Kyoto?' }],
      tools: [openaiWeather],
      tool_choice: 'required',
      max_tokens: 300,
      stream_options: { include_usage: true },
    });
    const final = await stream.finalChatCompletion();
    const body = bodyOf(lastCall(anthropicFake));
    expect(body.stream).toBe(true);
    expect(body.max_tokens).toBe(300);
    expect(body.tools).toEqual([
      { name: 'get_weather', description: 'Weather in a city', input_schema: weatherParameters },
    ]);
    expect(body.tool_choice).toMatchObject({ type: 'any' });

    const message = final.choices[0]?.message;
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(message?.content).toBe('Checking.');
    const call = message?.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function tool call');
    expect(call.id).toMatch(/^toolu_/);
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Kyoto' });
    expect(final.usage).toMatchObject({ prompt_tokens: 60, completion_tokens: 15 });
  });

  it('when the tool result is sent back, then Anthropic gets tool_use and tool_result blocks', async () => {
    anthropicFake.script({ kind: 'reply', text: 'Rainy.' });
    await oai.chat.completions.create({
      model: 'to-anthropic',
      tools: [openaiWeather],
      messages: [
        { role: 'user', content: 'Weather in Kyoto?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'toolu_01kyoto',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Kyoto"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_01kyoto', content: 'rain' },
      ],
    });
    const messages = bodyOf(lastCall(anthropicFake)).messages as Array<{ role: string; content: unknown }>;
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(messages[1]?.content).toEqual([
      { type: 'tool_use', id: 'toolu_01kyoto', name: 'get_weather', input: { city: 'Kyoto' } },
    ]);
    expect(messages[2]?.content).toEqual([
      expect.objectContaining({ type: 'tool_result', tool_use_id: 'toolu_01kyoto' }),
    ]);
    expect(JSON.stringify(messages[2]?.content)).toContain('rain');
  });

  it('when Anthropic rejects the request, then the OpenAI SDK gets a BadRequestError without the credential', async () => {
    anthropicFake.script({
      kind: 'error',
      status: 400,
      message: 'messages: text content blocks must be non-empty',
    });
    const error = await oai.chat.completions
      .create({ model: 'to-anthropic', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const e = error as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.message).toContain('text content blocks must be non-empty');
    expectNoCredential(e.message, e.error, headerText(e.headers));
  });
});

describe('OpenAI SDK → Gemini upstream', () => {
  it('when a chat with a system message is sent, then Gemini gets contents and systemInstruction, and the answer comes back in OpenAI format', async () => {
    geminiFake.script({ kind: 'reply', text: 'Hallo!', usage: { input: 21, output: 2, cached: 16 } });
    const { data, response } = await oai.chat.completions
      .create({
        model: 'to-gemini',
        messages: [
          { role: 'system', content: 'Answer in German.' },
          { role: 'user', content: 'Hello' },
        ],
        max_tokens: 50,
        temperature: 0.1,
      })
      .withResponse();

    const upstream = lastCall(geminiFake);
    expect(upstream.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(upstream.headers['x-goog-api-key']).toBe(KEYS.gemini);
    expect(upstream.headers.authorization).toBeUndefined();
    const body = bodyOf(upstream);
    expect(body.contents).toEqual([{ role: 'user', parts: [{ text: 'Hello' }] }]);
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'Answer in German.' }] });
    expect(body.generationConfig).toMatchObject({ maxOutputTokens: 50, temperature: 0.1 });
    expect(body.messages).toBeUndefined();

    expect(data.choices[0]?.message.content).toBe('Hallo!');
    expect(data.choices[0]?.finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({
      prompt_tokens: 21,
      completion_tokens: 2,
      prompt_tokens_details: { cached_tokens: 16 },
    });
    expectNoCredential(data, headerText(response.headers));
  });

  it('when a streamed chat asks for tools, then Gemini gets functionDeclarations on the SSE endpoint and the SDK gets a tool call with an id', async () => {
    geminiFake.script({
      kind: 'reply',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Lima' } }],
      usage: { input: 33, output: 7 },
    });
    const stream = oai.chat.completions.stream({
      model: 'to-gemini',
      messages: [{ role: 'user', content: 'Weather in Lima?' }],
      tools: [openaiWeather],
      stream_options: { include_usage: true },
    });
    const final = await stream.finalChatCompletion();
    const upstream = lastCall(geminiFake);
    expect(upstream.path).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent');
    expect(upstream.query.alt).toBe('sse');
    const tools = bodyOf(upstream).tools as Array<{ functionDeclarations: Array<Record<string, unknown>> }>;
    expect(tools[0]?.functionDeclarations).toEqual([
      expect.objectContaining({ name: 'get_weather', description: 'Weather in a city' }),
    ]);
    expect(JSON.stringify(tools[0]?.functionDeclarations[0])).toContain('"city"');

    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    const call = final.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function tool call');
    expect(call.id).toBeTruthy();
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Lima' });
    expect(final.usage).toMatchObject({ prompt_tokens: 33, completion_tokens: 7 });
  });

  it('when the tool call the gateway issued is answered, then Gemini gets functionCall and functionResponse parts', async () => {
    geminiFake.script({ kind: 'reply', toolCalls: [{ name: 'get_weather', arguments: { city: 'Lima' } }] });
    const first = await oai.chat.completions.create({
      model: 'to-gemini',
      tools: [openaiWeather],
      messages: [{ role: 'user', content: 'Weather in Lima?' }],
    });
    const call = first.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function tool call');
    geminiFake.script({ kind: 'reply', text: 'Foggy in Lima.' });
    const second = await oai.chat.completions.create({
      model: 'to-gemini',
      tools: [openaiWeather],
      messages: [
        { role: 'user', content: 'Weather in Lima?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: '{"sky":"fog"}' },
      ],
    });
    expect(second.choices[0]?.message.content).toBe('Foggy in Lima.');
    const contents = bodyOf(lastCall(geminiFake)).contents as Array<{ role: string; parts: unknown[] }>;
    expect(contents.map((c) => c.role)).toEqual(['user', 'model', 'user']);
    expect(contents[1]?.parts).toEqual([
      expect.objectContaining({ functionCall: { name: 'get_weather', args: { city: 'Lima' } } }),
    ]);
    expect(contents[2]?.parts).toEqual([
      { functionResponse: { name: 'get_weather', response: { sky: 'fog' } } },
    ]);
  });

  it('when a streamed plain answer is read, then the text and usage arrive in OpenAI chunks', async () => {
    geminiFake.script({ kind: 'reply', chunks: ['Guten ', 'Tag'], usage: { input: 5, output: 2 } });
    const stream = await oai.chat.completions.create({
      model: 'to-gemini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe('Guten Tag');
    expect(usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 2 });
  });
});

describe('OpenAI SDK → Azure OpenAI upstream', () => {
  it('when a chat is sent, then it goes to the deployment path with api-version and api-key, and the answer comes back', async () => {
    azureFake.script({ kind: 'reply', text: 'Hi from Azure', usage: { input: 12, output: 3, cached: 4 } });
    const { data, response } = await oai.chat.completions
      .create({ model: 'to-azure', messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 })
      .withResponse();
    const upstream = lastCall(azureFake);
    expect(upstream.path).toBe('/openai/deployments/gpt-4o/chat/completions');
    expect(upstream.query['api-version']).toBe(AZURE_API_VERSION);
    expect(upstream.headers['api-key']).toBe(KEYS.azure);
    expect(upstream.headers.authorization).toBeUndefined();
    expect(bodyOf(upstream).messages).toEqual([{ role: 'user', content: 'hello' }]);

    expect(data.choices[0]?.message.content).toBe('Hi from Azure');
    expect(data.model).toBe('to-azure');
    expect(data.usage).toMatchObject({
      prompt_tokens: 12,
      completion_tokens: 3,
      prompt_tokens_details: { cached_tokens: 4 },
    });
    expect(response.headers.get('x-flowloom-deployment')).toBe('azure/gpt-4o');
    expectNoCredential(data, headerText(response.headers));
  });

  it('when a streamed chat with tools is sent, then the Azure prompt-filter chunk is absorbed and the tool call reassembled', async () => {
    azureFake.script({
      kind: 'reply',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Dublin' }, fragments: 3 }],
      usage: { input: 44, output: 9 },
    });
    const { data: stream, response } = await oai.chat.completions
      .create({
        model: 'to-azure',
        messages: [{ role: 'user', content: 'Weather in Dublin?' }],
        tools: [openaiWeather],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    const raw: string[] = [];
    const args: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      raw.push(JSON.stringify(chunk));
      const call = chunk.choices[0]?.delta.tool_calls?.[0];
      if (call?.function?.arguments) args.push(call.function.arguments);
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    const upstream = lastCall(azureFake);
    expect(upstream.path).toBe('/openai/deployments/gpt-4o/chat/completions');
    expect(bodyOf(upstream).stream).toBe(true);
    expect(JSON.parse(args.join(''))).toEqual({ city: 'Dublin' });
    expect(finish).toBe('tool_calls');
    expect(usage).toMatchObject({ prompt_tokens: 44, completion_tokens: 9 });
    expectNoCredential(raw, headerText(response.headers));
  });
});

describe('OpenAI SDK → OpenAI-compatible upstream', () => {
  it('when a chat is sent, then the server gets max_tokens (not max_completion_tokens) and its bearer token', async () => {
    compatibleFake.script({ kind: 'reply', text: 'local llama says hi' });
    const data = await oai.chat.completions.create({
      model: 'to-compatible',
      messages: [{ role: 'user', content: 'hi' }],
      max_completion_tokens: 42,
    });
    expect(data.choices[0]?.message.content).toBe('local llama says hi');
    const upstream = lastCall(compatibleFake);
    expect(upstream.path).toBe('/v1/chat/completions');
    expect(upstream.headers.authorization).toBe(`Bearer ${KEYS.vllm}`);
    expect(bodyOf(upstream)).toMatchObject({ model: 'gpt-4o-mini', max_tokens: 42 });
    expect(bodyOf(upstream).max_completion_tokens).toBeUndefined();
  });
});

describe('Anthropic SDK → OpenAI upstream', () => {
  it('when a message with a system prompt is sent, then OpenAI gets a system message and max_completion_tokens, and the answer comes back in Anthropic format', async () => {
    openaiFake.script({ kind: 'reply', text: 'Hi from GPT', usage: { input: 40, output: 4, cached: 10 } });
    const { data, response } = await ant.messages
      .create({
        model: 'to-openai',
        max_tokens: 77,
        system: 'Be helpful.',
        stop_sequences: ['END'],
        messages: [{ role: 'user', content: 'hello' }],
      })
      .withResponse();
    const upstream = lastCall(openaiFake);
    expect(upstream.path).toBe('/v1/chat/completions');
    expect(upstream.headers.authorization).toBe(`Bearer ${KEYS.openai}`);
    const body = bodyOf(upstream);
    expect(body.model).toBe('gpt-4o');
    expect(body.messages).toEqual([
      { role: 'system', content: 'Be helpful.' },
      { role: 'user', content: 'hello' },
    ]);
    expect(body.max_completion_tokens).toBe(77);
    expect(body.stop).toEqual(['END']);
    expect(body.system).toBeUndefined();

    expect(data.type).toBe('message');
    expect(data.content).toEqual([expect.objectContaining({ type: 'text', text: 'Hi from GPT' })]);
    expect(data.stop_reason).toBe('end_turn');
    expect(data.usage).toMatchObject({ input_tokens: 30, cache_read_input_tokens: 10, output_tokens: 4 });
    expectNoCredential(data, headerText(response.headers));
  });

  it('when a streamed message uses a tool, then OpenAI gets function tools and the SDK reassembles tool_use with stop_reason tool_use', async () => {
    openaiFake.script({
      kind: 'reply',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Nairobi' }, id: 'call_nairobi', fragments: 4 }],
      usage: { input: 50, output: 11 },
    });
    const stream = ant.messages.stream({
      model: 'to-openai',
      max_tokens: 200,
      tools: [anthropicWeather],
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages: [{ role: 'user', content: 'Weather in Nairobi?' }],
    });
    const message = await stream.finalMessage();
    const body = bodyOf(lastCall(openaiFake));
    expect(body.stream).toBe(true);
    expect(body.stream_options).toEqual({ include_usage: true });
    expect(body.tools).toEqual([
      {
        type: 'function',
        function: { name: 'get_weather', description: 'Weather in a city', parameters: weatherParameters },
      },
    ]);
    expect(body.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });

    expect(message.stop_reason).toBe('tool_use');
    const block = message.content.find((b) => b.type === 'tool_use');
    expect(block).toMatchObject({
      type: 'tool_use',
      id: 'call_nairobi',
      name: 'get_weather',
      input: { city: 'Nairobi' },
    });
    expect(message.usage).toMatchObject({ input_tokens: 50, output_tokens: 11 });
  });

  it('when a tool result is sent back, then OpenAI gets an assistant tool_calls message and a tool message', async () => {
    openaiFake.script({ kind: 'reply', text: 'Warm.' });
    await ant.messages.create({
      model: 'to-openai',
      max_tokens: 50,
      tools: [anthropicWeather],
      messages: [
        { role: 'user', content: 'Weather in Nairobi?' },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 'call_n1', name: 'get_weather', input: { city: 'Nairobi' } }],
        },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_n1', content: '28C' }] },
      ],
    });
    const messages = bodyOf(lastCall(openaiFake)).messages as Array<Record<string, unknown>>;
    expect(messages[1]).toMatchObject({
      role: 'assistant',
      tool_calls: [{ id: 'call_n1', type: 'function', function: { name: 'get_weather' } }],
    });
    const toolCalls = (messages[1]?.tool_calls ?? []) as Array<{ function: { arguments: string } }>;
    expect(JSON.parse(toolCalls[0]?.function.arguments ?? '')).toEqual({ city: 'Nairobi' });
    expect(messages[2]).toMatchObject({ role: 'tool', tool_call_id: 'call_n1', content: '28C' });
  });

  it('when OpenAI says the answer hit the length limit, then the Anthropic SDK sees max_tokens', async () => {
    openaiFake.script({ kind: 'reply', chunks: ['cut ', 'off'], finish: 'length' });
    const message = await ant.messages
      .stream({ model: 'to-openai', max_tokens: 2, messages: [{ role: 'user', content: 'long essay' }] })
      .finalMessage();
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.content).toEqual([expect.objectContaining({ type: 'text', text: 'cut off' })]);
  });
});

describe('Anthropic SDK → Gemini upstream', () => {
  it('when a message with a system prompt is sent, then Gemini gets systemInstruction and contents, and the answer comes back in Anthropic format', async () => {
    geminiFake.script({ kind: 'reply', text: 'Ciao!', usage: { input: 18, output: 2, cached: 8 } });
    const { data, response } = await ant.messages
      .create({
        model: 'to-gemini',
        max_tokens: 64,
        system: 'Answer in Italian.',
        messages: [{ role: 'user', content: 'Hello' }],
      })
      .withResponse();
    const upstream = lastCall(geminiFake);
    expect(upstream.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(upstream.headers['x-goog-api-key']).toBe(KEYS.gemini);
    const body = bodyOf(upstream);
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'Answer in Italian.' }] });
    expect(body.contents).toEqual([{ role: 'user', parts: [{ text: 'Hello' }] }]);
    expect(body.generationConfig).toMatchObject({ maxOutputTokens: 64 });

    expect(data.content).toEqual([expect.objectContaining({ type: 'text', text: 'Ciao!' })]);
    expect(data.stop_reason).toBe('end_turn');
    expect(data.usage).toMatchObject({ input_tokens: 10, cache_read_input_tokens: 8, output_tokens: 2 });
    expectNoCredential(data, headerText(response.headers));
  });

  it('when a streamed message uses a tool, then Gemini gets functionDeclarations and the SDK gets a tool_use block', async () => {
    geminiFake.script({
      kind: 'reply',
      text: 'Let me look.',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Cusco' } }],
      usage: { input: 25, output: 8 },
    });
    const message = await ant.messages
      .stream({
        model: 'to-gemini',
        max_tokens: 100,
        tools: [anthropicWeather],
        messages: [{ role: 'user', content: 'Weather in Cusco?' }],
      })
      .finalMessage();
    const upstream = lastCall(geminiFake);
    expect(upstream.path).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent');
    const tools = bodyOf(upstream).tools as Array<{ functionDeclarations: Array<{ name: string }> }>;
    expect(tools[0]?.functionDeclarations.map((d) => d.name)).toEqual(['get_weather']);

    expect(message.stop_reason).toBe('tool_use');
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Let me look.' });
    const block = message.content.find((b) => b.type === 'tool_use');
    expect(block).toMatchObject({ name: 'get_weather', input: { city: 'Cusco' } });
    expect((block as Anthropic.ToolUseBlock).id).toBeTruthy();
    expect(message.usage).toMatchObject({ input_tokens: 25, output_tokens: 8 });
  });

  it('when Gemini answers 400 INVALID_ARGUMENT, then the Anthropic SDK gets a BadRequestError without the credential', async () => {
    geminiFake.script({ kind: 'error', status: 400, message: 'Invalid JSON payload received.' });
    const error = await ant.messages
      .create({ model: 'to-gemini', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    const e = error as InstanceType<typeof Anthropic.BadRequestError>;
    expect(e.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expectNoCredential(e.message, e.error, headerText(e.headers));
  });
});

describe('Gemini SDK → Anthropic and OpenAI upstreams', () => {
  const weatherDeclaration = {
    name: 'get_weather',
    description: 'Weather in a city',
    parametersJsonSchema: weatherParameters,
  };

  it('when generateContent with tools reaches Anthropic, then system is lifted out and the functionCall comes back', async () => {
    anthropicFake.script({
      kind: 'reply',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Quito' } }],
      usage: { input: 64, output: 9, cached: 32 },
    });
    const response = await genai.models.generateContent({
      model: 'to-anthropic',
      contents: 'Weather in Quito?',
      config: {
        systemInstruction: 'Use tools.',
        maxOutputTokens: 120,
        tools: [{ functionDeclarations: [weatherDeclaration] }],
      },
    });
    const body = bodyOf(lastCall(anthropicFake));
    expect(body.system).toBe('Use tools.');
    expect(body.max_tokens).toBe(120);
    expect(body.tools).toEqual([
      { name: 'get_weather', description: 'Weather in a city', input_schema: weatherParameters },
    ]);
    expect(JSON.stringify(body.messages)).toContain('Weather in Quito?');

    expect(response.functionCalls?.[0]).toMatchObject({ name: 'get_weather', args: { city: 'Quito' } });
    expect(response.usageMetadata).toMatchObject({
      promptTokenCount: 64,
      candidatesTokenCount: 9,
      cachedContentTokenCount: 32,
    });
    expectNoCredential(response);
  });

  it('when generateContentStream reaches OpenAI, then the chunks join and the last carries the usage', async () => {
    openaiFake.script({ kind: 'reply', chunks: ['Hola ', 'mundo'], usage: { input: 14, output: 2 } });
    const stream = await genai.models.generateContentStream({
      model: 'to-openai',
      contents: 'Say hello in Spanish',
      config: { systemInstruction: 'Be brief.' },
    });
    let text = '';
    let prompt: number | undefined;
    for await (const chunk of stream) {
      text += chunk.text ?? '';
      prompt = chunk.usageMetadata?.promptTokenCount ?? prompt;
    }
    expect(text).toBe('Hola mundo');
    expect(prompt).toBe(14);
    const body = bodyOf(lastCall(openaiFake));
    expect(body.stream).toBe(true);
    expect(body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello in Spanish' },
    ]);
  });
});

describe('usage is recorded across formats', () => {
  it('when an Anthropic-format stream is answered by Gemini, then the completed event has the upstream usage', async () => {
    geminiFake.script({ kind: 'reply', chunks: ['a ', 'b'], usage: { input: 70, output: 2, cached: 64 } });
    const stream = ant.messages.stream({
      model: 'to-gemini',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    });
    await stream.finalMessage();
    const { response } = await stream.withResponse();
    const event = await eventFor(t, response.headers.get('x-request-id'));
    expect(event.data).toMatchObject({
      api: 'anthropic',
      stream: true,
      provider: 'gemini',
      usage: { inputTokens: 70, outputTokens: 2, cachedInputTokens: 64 },
    });
  });
});

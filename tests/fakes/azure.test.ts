import OpenAI, { AzureOpenAI } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from './index.js';

const API_KEY = 'azure-test-key-0001';
const API_VERSION = '2024-10-21';

describe('fake Azure OpenAI upstream driven by the official AzureOpenAI client', () => {
  let fake: FakeProvider;
  let client: AzureOpenAI;

  beforeAll(async () => {
    fake = await startFakeProvider({ kind: 'azure', apiKey: API_KEY });
    client = new AzureOpenAI({
      endpoint: fake.url,
      apiKey: API_KEY,
      apiVersion: API_VERSION,
      deployment: 'gpt-4o',
      maxRetries: 0,
    });
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.reset();
  });

  it('when a chat completion is asked through a deployment, then the request uses the Azure path, api-version and api-key, and the answer parses', async () => {
    fake.script({ kind: 'reply', text: 'Hi from Azure', usage: { input: 40, output: 4, cached: 0 } });
    const completion = await client.chat.completions.create({
      model: 'ignored-by-azure',
      messages: [{ role: 'user', content: 'hello' }],
    });

    expect(completion.choices[0]?.message.content).toBe('Hi from Azure');
    expect(completion.model).toBe('gpt-4o-2024-11-20');
    expect(completion.usage?.total_tokens).toBe(44);
    const raw = completion as unknown as Record<string, unknown>;
    expect(raw['prompt_filter_results']).toBeInstanceOf(Array);

    const recorded = fake.requests.at(-1);
    expect(recorded?.path).toBe('/openai/deployments/gpt-4o/chat/completions');
    expect(recorded?.query['api-version']).toBe(API_VERSION);
    expect(recorded?.headers['api-key']).toBe(API_KEY);
    expect(recorded?.headers.authorization).toBeUndefined();
  });

  it('when a completion is streamed with usage, then the SDK skips the prompt-filter chunk and reads text and usage', async () => {
    fake.script({ kind: 'reply', chunks: ['Az', 'ure'], usage: { input: 10, output: 2, cached: 8 } });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hello' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    // Azure's first chunk carries only the prompt's content-filter verdict.
    expect(chunks[0]?.choices).toEqual([]);
    expect(chunks[0]?.id).toBe('');
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('Azure');
    expect(chunks.at(-1)?.usage).toMatchObject({
      prompt_tokens: 10,
      prompt_tokens_details: { cached_tokens: 8 },
    });

    const helper = client.chat.completions.stream({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
    });
    fake.script({ kind: 'reply', chunks: ['once', ' more'] });
    const final = await helper.finalChatCompletion();
    expect(final.choices[0]?.message.content).toBe('once more');
  });

  it('when the api-version is unknown or missing, then Azure answers 400 or a bare 404', async () => {
    const outdated = new AzureOpenAI({
      endpoint: fake.url,
      apiKey: API_KEY,
      apiVersion: '2019-01-01',
      deployment: 'gpt-4o',
      maxRetries: 0,
    });
    const error = await outdated.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('BadRequest');
    expect((error as Error).message).toContain('API version not supported');

    const missing = await fetch(`${fake.url}/openai/deployments/gpt-4o/chat/completions`, {
      method: 'POST',
      headers: { 'api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: '404', message: 'Resource not found' } });
  });

  it('when the deployment does not exist or the key is wrong, then the SDK raises NotFoundError or AuthenticationError', async () => {
    const elsewhere = new AzureOpenAI({
      endpoint: fake.url,
      apiKey: API_KEY,
      apiVersion: API_VERSION,
      deployment: 'no-such-deployment',
      maxRetries: 0,
    });
    const notFound = await elsewhere.chat.completions
      .create({ model: 'x', messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect((notFound as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('DeploymentNotFound');

    const wrongKey = new AzureOpenAI({
      endpoint: fake.url,
      apiKey: 'not-the-key',
      apiVersion: API_VERSION,
      deployment: 'gpt-4o',
      maxRetries: 0,
    });
    const denied = await wrongKey.chat.completions
      .create({ model: 'x', messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((denied as Error).message).toContain('Access denied');
  });

  it('when rate limited, then the SDK raises RateLimitError with retry-after and retry-after-ms', async () => {
    fake.script({ kind: 'error', status: 429, retryAfter: 6 });
    const error = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimit = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimit.code).toBe('429');
    expect(rateLimit.message).toContain(`API version ${API_VERSION}`);
    expect(rateLimit.headers?.get('retry-after')).toBe('6');
    expect(rateLimit.headers?.get('retry-after-ms')).toBe('6000');
  });

  it('when embeddings are asked through an embedding deployment, then the SDK decodes them', async () => {
    const embedder = new AzureOpenAI({
      endpoint: fake.url,
      apiKey: API_KEY,
      apiVersion: API_VERSION,
      deployment: 'text-embedding-3-small',
      maxRetries: 0,
    });
    const result = await embedder.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    expect(result.data[0]?.embedding).toHaveLength(1536);
    expect(fake.requests.at(-1)?.path).toBe('/openai/deployments/text-embedding-3-small/embeddings');
  });

  it('when the client aborts a hanging call, then the fake records the abort', async () => {
    fake.script({ kind: 'hang' });
    const controller = new AbortController();
    const pending = client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, { signal: controller.signal })
      .catch((caught: unknown) => caught);
    await fake.waitFor((request) => request.behaviour === 'hang');
    controller.abort();
    expect(await pending).toBeInstanceOf(OpenAI.APIUserAbortError);
    expect((await fake.waitForAbort()).path).toBe('/openai/deployments/gpt-4o/chat/completions');
  });
});

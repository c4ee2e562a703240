import type Anthropic from '@anthropic-ai/sdk';
import type { TestGateway } from '@flowloom/gateway/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../fakes/index.js';
import { lastCall, modelCalls, resetAndCloseAfterSuite, startAnthropicAndOpenAI } from './helpers.js';

/**
 * An Anthropic-format caller's `anthropic-beta` header reaches Anthropic upstreams, and only them; no
 * header of the caller's reaches any provider otherwise, least of all its FlowLoom key.
 */
const BETAS = ['context-1m-2025-08-07', 'interleaved-thinking-2025-05-14'];

let anthropicFake: FakeProvider;
let openaiFake: FakeProvider;
let t: TestGateway;
let key: string;
let client: Anthropic;
let anthropicKey: string;
let openaiKey: string;

beforeAll(async () => {
  const claude = { provider: 'anthropic', model: 'claude-sonnet-4-5' };
  const gpt = { provider: 'openai', model: 'gpt-4o' };
  ({
    anthropicFake,
    openaiFake,
    gateway: t,
    key,
    anthropic: client,
    anthropicKey,
    openaiKey,
  } = await startAnthropicAndOpenAI('anthropic-beta', {
    models: {
      claude: { deployments: [claude] },
      gpt: { deployments: [gpt] },
      'claude-or-gpt': { deployments: [claude, gpt] },
    },
    routing: { maxAttempts: 2, retryBaseMs: 1, retryMaxMs: 1 },
  }));
});

resetAndCloseAfterSuite(() => ({ gateway: t, fakes: [anthropicFake, openaiFake] }));

const ask = (model: string) =>
  ({
    model,
    max_tokens: 64,
    messages: [{ role: 'user', content: 'Hello' }],
    betas: BETAS,
  }) satisfies Anthropic.Beta.MessageCreateParamsNonStreaming;

/** Nothing identifying the caller to FlowLoom reaches a provider. */
function expectNoCallerCredentials(headers: Record<string, unknown>): void {
  expect(JSON.stringify(headers)).not.toContain(key);
}

describe('anthropic-beta from Anthropic-format callers', () => {
  it('when the SDK asks for beta features, then the Anthropic upstream gets them with its own key and version', async () => {
    const message = await client.beta.messages.create(ask('claude'));
    expect(message.type).toBe('message');
    const { headers } = lastCall(anthropicFake);
    expect(headers['anthropic-beta']).toBe(BETAS.join(','));
    expect(headers['anthropic-version']).toBe('2023-06-01');
    expect(headers['x-api-key']).toBe(anthropicKey);
    expect(headers.authorization).toBeUndefined();
    expectNoCallerCredentials(headers);
  });

  it('when the request is streamed, then the header goes with it', async () => {
    const stream = client.beta.messages.stream(ask('claude'));
    await stream.finalMessage();
    expect(lastCall(anthropicFake).headers['anthropic-beta']).toBe(BETAS.join(','));
  });

  it('when no beta is asked for, then the upstream gets no anthropic-beta header', async () => {
    const { betas: _none, ...plain } = ask('claude');
    await client.messages.create(plain);
    expect(lastCall(anthropicFake).headers['anthropic-beta']).toBeUndefined();
  });

  it('when the model is served by another provider, then that provider never sees the header', async () => {
    const message = await client.beta.messages.create(ask('gpt'));
    expect(message.type).toBe('message');
    const { headers } = lastCall(openaiFake);
    expect(headers['anthropic-beta']).toBeUndefined();
    expect(headers['anthropic-version']).toBeUndefined();
    expect(headers.authorization).toBe(`Bearer ${openaiKey}`);
    expectNoCallerCredentials(headers);
  });

  it('when Anthropic fails and another provider takes over, then only the Anthropic attempt carried the header', async () => {
    anthropicFake.script({ kind: 'error', status: 529 });
    const { response } = await client.beta.messages.create(ask('claude-or-gpt')).withResponse();
    expect(response.headers.get('x-flowloom-deployment')).toBe('openai/gpt-4o');
    expect(lastCall(anthropicFake).headers['anthropic-beta']).toBe(BETAS.join(','));
    expect(lastCall(openaiFake).headers['anthropic-beta']).toBeUndefined();
  });

  it('when an OpenAI-format caller sends the header, then it is not passed on, even to Anthropic', async () => {
    const res = await t.post(
      '/v1/chat/completions',
      { model: 'claude', messages: [{ role: 'user', content: 'Hello' }] },
      key,
      { 'anthropic-beta': BETAS.join(',') },
    );
    expect(res.status).toBe(200);
    expect(lastCall(anthropicFake).headers['anthropic-beta']).toBeUndefined();
  });

  it('when the header is not a list of beta names, then the caller gets a 400 in its format and nothing is sent', async () => {
    const res = await t.post(
      '/v1/messages',
      { model: 'claude', max_tokens: 16, messages: [{ role: 'user', content: 'Hello' }] },
      key,
      { 'anthropic-beta': 'context-1m-2025-08-07, x-api-key: sk-stolen' },
    );
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expect((res.body as { error: { message: string } }).error.message).toMatch(/^anthropic-beta: /);
    expect(modelCalls(anthropicFake)).toHaveLength(0);
  });
});

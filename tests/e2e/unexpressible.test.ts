import type { TestGateway } from '@flowloom/gateway/testing';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../fakes/index.js';
import {
  bodyOf,
  eventFor,
  FAILED,
  lastCall,
  modelCalls,
  resetAndCloseAfterSuite,
  startAnthropicAndOpenAI,
} from './helpers.js';

/**
 * A request one provider's format cannot express (Anthropic takes jpeg, png, gif and webp images, not
 * bmp) is the caller's problem, not the deployment's: no retry, no breaker penalty, and another
 * deployment of the route that can take it answers instead.
 */
const FAILURE_THRESHOLD = 2;

let anthropicFake: FakeProvider;
let openaiFake: FakeProvider;
let t: TestGateway;
let openai: OpenAI;
let key: string;

beforeAll(async () => {
  const claude = { provider: 'anthropic', model: 'claude-haiku-4-5' };
  // Its own provider name, so that the other scenarios cannot have opened its circuit breaker.
  const claudeFirst = { provider: 'anthropic-first', model: 'claude-haiku-4-5' };
  const gpt = { provider: 'openai', model: 'gpt-4o' };
  ({
    anthropicFake,
    openaiFake,
    gateway: t,
    openai,
    key,
  } = await startAnthropicAndOpenAI('unexpressible', {
    anthropicNames: ['anthropic-first'],
    models: {
      'claude-only': { deployments: [claude] },
      'claude-then-gpt': { deployments: [claudeFirst, gpt] },
    },
    routing: {
      maxAttempts: 3,
      circuitBreaker: { failureThreshold: FAILURE_THRESHOLD, cooldownMs: 60_000 },
    },
  }));
});

resetAndCloseAfterSuite(() => ({ gateway: t, fakes: [anthropicFake, openaiFake] }));

const BMP = `data:image/bmp;base64,${Buffer.from('BM fake bitmap').toString('base64')}`;

const withBitmap = (model: string) =>
  ({
    model,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this picture?' },
          { type: 'image_url', image_url: { url: BMP } },
        ],
      },
    ],
  }) satisfies OpenAI.ChatCompletionCreateParamsNonStreaming;

describe('a request a deployment cannot express', () => {
  it('when the only deployment cannot take it, then the caller gets a 400 naming the field and the deployment, and nothing is sent', async () => {
    const res = await t.post('/v1/chat/completions', withBitmap('claude-only'), key);
    expect(res.status).toBe(400);
    const error = (res.body as { error: { type: string; code: string; param: string; message: string } })
      .error;
    expect(error.type).toBe('invalid_request_error');
    expect(error.code).toBe('invalid_request');
    expect(error.param).toBe('messages.0.content.1');
    expect(error.message).toContain('anthropic/claude-haiku-4-5');
    expect(error.message).toContain('image/bmp');
    expect(modelCalls(anthropicFake)).toHaveLength(0);
    const event = await eventFor(t, res.headers.get('x-request-id'));
    expect(event.type).toBe(FAILED);
    expect(event.data).toMatchObject({ errorCode: 'invalid_request', httpStatus: 400 });
  });

  it('when it is streamed, then the 400 comes before any stream starts, through the SDK', async () => {
    const error = await openai.chat.completions.create({ ...withBitmap('claude-only'), stream: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('image/bmp');
    expect(modelCalls(anthropicFake)).toHaveLength(0);
  });

  it('when it is refused more often than the breaker tolerates, then the deployment still serves other requests', async () => {
    for (let i = 0; i < FAILURE_THRESHOLD + 2; i++) {
      const error = await openai.chat.completions.create(withBitmap('claude-only')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    }
    const { data, response } = await openai.chat.completions
      .create({ model: 'claude-only', messages: [{ role: 'user', content: 'plain text' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBeTruthy();
    expect(response.headers.get('x-flowloom-deployment')).toBe('anthropic/claude-haiku-4-5');
    expect(response.headers.get('x-flowloom-attempts')).toBe('1');
    expect(modelCalls(anthropicFake)).toHaveLength(1);
  });

  it('when a later deployment can take it, then that one answers at the first attempt', async () => {
    const { data, response } = await openai.chat.completions
      .create(withBitmap('claude-then-gpt'))
      .withResponse();
    expect(data.choices[0]?.message.content).toBeTruthy();
    expect(response.headers.get('x-flowloom-deployment')).toBe('openai/gpt-4o');
    expect(response.headers.get('x-flowloom-attempts')).toBe('1');
    expect(modelCalls(anthropicFake)).toHaveLength(0);
    const sent = bodyOf(lastCall(openaiFake)).messages as Array<{ content: unknown }>;
    expect(JSON.stringify(sent[0]?.content)).toContain('data:image/bmp;base64,');
  });

  it('when it is streamed to a route with a capable deployment, then the stream comes from that one', async () => {
    const { data: stream, response } = await openai.chat.completions
      .create({ ...withBitmap('claude-then-gpt'), stream: true })
      .withResponse();
    expect(response.headers.get('x-flowloom-attempts')).toBe('1');
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(modelCalls(anthropicFake)).toHaveLength(0);
    expect(modelCalls(openaiFake)).toHaveLength(1);
  });
});

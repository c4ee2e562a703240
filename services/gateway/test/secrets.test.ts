import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../src/domain/keys.js';
import { eventsOf, send } from './http-helpers.js';
import { startTestGateway, type TestGateway, type TestResponse } from './support.js';

// Secrets (admin and member API keys, provider credentials) never reach events, error bodies or
// any API answer. Provider keys are exercised against an upstream that, like some OpenAI-compatible
// servers, echoes the credential it was sent back in its error message.

const OPENAI_KEY = 'sk-proj-Zq3t8W1xYv6uR2sP9oN4mL7kJ0hG5fD3';
// An Azure/self-hosted style key: 32 hex characters, no recognizable prefix.
const SELF_HOSTED_KEY = '8c1f4e2a9b7d6035e4f1a2b3c4d5e6f7';

let t: TestGateway;
let upstream: Server;
const secrets: string[] = [];
const responses: TestResponse[] = [];

function echoUpstream(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const presented =
        req.headers.authorization?.replace(/^Bearer\s+/i, '') ?? String(req.headers['api-key'] ?? '');
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            message: `Incorrect API key provided: ${presented}. You can find your API key in your account settings.`,
            type: 'invalid_request_error',
            param: null,
            code: 'invalid_api_key',
          },
        }),
      );
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Every response is kept, so the last test can check all of them at once too. */
async function keep(res: Promise<TestResponse>): Promise<TestResponse> {
  const r = await res;
  responses.push(r);
  return r;
}

function expectNoSecretIn(text: string, where: string): void {
  for (const secret of secrets) {
    expect(text.includes(secret), `${where} contains a secret (${secret.slice(0, 6)}…)`).toBe(false);
    expect(text.includes(hashKey(secret)), `${where} contains a secret's hash`).toBe(false);
  }
}

function headerText(res: TestResponse): string {
  return [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
}

beforeAll(async () => {
  upstream = await echoUpstream();
  const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  t = await startTestGateway({
    env: { OPENAI_API_KEY: OPENAI_KEY, SELF_HOSTED_KEY },
    overrides: {
      providers: {
        openai: { kind: 'openai', apiKeyEnv: 'OPENAI_API_KEY', baseUrl: base, models: ['gpt-*'] },
        selfhosted: {
          kind: 'openai-compatible',
          apiKeyEnv: 'SELF_HOSTED_KEY',
          baseUrl: base,
          models: ['echo-*'],
        },
      },
      routing: { maxAttempts: 1 },
    },
  });
  secrets.push(t.adminKey, OPENAI_KEY, SELF_HOSTED_KEY);
});
afterAll(async () => {
  await t.close();
  await new Promise((resolve) => upstream.close(resolve));
});

describe('API keys stay secret', () => {
  it('when keys are created, used, rotated and revoked, then no key or hash is in any event or error', async () => {
    const member = await t.createKey({ name: 'member', project: 'secrets' });
    const narrow = await t.createKey({ name: 'narrow', models: ['flowloom-local'] });
    const doomed = await t.createKey({ name: 'doomed' });
    const rotating = await t.createKey({ name: 'rotating' });
    secrets.push(member.key, narrow.key, doomed.key, rotating.key);

    // The one answer that must carry a secret: the replacement key, shown once.
    const rotated = await t.post(`/api/v1/keys/${rotating.id}/rotate`, { gracePeriodSeconds: 0 }, t.adminKey);
    expect(rotated.status).toBe(201);
    secrets.push((rotated.body as { key: string }).key);
    await keep(t.post(`/api/v1/keys/${doomed.id}/revoke`, undefined, t.adminKey));

    const chat = { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] };
    const scripted = (script: string) => ({
      model: 'flowloom-local',
      messages: [{ role: 'user', content: `flowloom-local: ${script}` }],
    });
    await keep(t.post('/v1/chat/completions', chat, member.key));
    await keep(t.post('/v1/chat/completions', { ...chat, stream: true }, member.key));
    await keep(t.post('/v1/chat/completions', scripted('{"error":{"status":500}}'), member.key));
    await keep(
      t.post('/v1/chat/completions', scripted('{"error":{"status":400,"message":"bad"}}'), member.key),
    );
    await keep(t.post('/v1/chat/completions', { ...chat, model: 'nope' }, member.key));
    await keep(t.post('/v1/embeddings', { model: 'flowloom-local-embedding', input: 'x' }, member.key));
    await keep(t.post('/v1/chat/completions', { ...chat, model: 'flowloom-local-embedding' }, narrow.key));
    await keep(t.post('/v1/chat/completions', chat, doomed.key));
    await keep(t.post('/v1/chat/completions', chat, rotating.key));
    await keep(
      send(t, '/v1/messages', {
        headers: { 'x-api-key': member.key, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'flowloom-local',
          max_tokens: 8,
          messages: [{ role: 'user', content: 'hi' }],
        }),
      }),
    );
    await keep(
      send(t, '/v1/messages', {
        headers: { 'x-api-key': doomed.key, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'flowloom-local',
          max_tokens: 8,
          messages: [{ role: 'user', content: 'hi' }],
        }),
      }),
    );
    await keep(t.get('/v1/models', member.key));
    await keep(t.get('/api/v1/keys?includeRevoked=true', t.adminKey));

    const events = await eventsOf(t);
    expect(events.length).toBeGreaterThan(5);
    expectNoSecretIn(JSON.stringify(events), 'the events');
    for (const res of responses) expectNoSecretIn(res.text + headerText(res), `a ${res.status} answer`);
  });

  it('when a wrong or malformed key is presented, then the error does not echo it', async () => {
    const wrong = 'flk_this-key-does-not-exist-but-looks-real-0123';
    const cases = [
      t.post('/v1/chat/completions', { model: 'flowloom-local', messages: [] }, wrong),
      send(t, '/v1/chat/completions', {
        headers: { authorization: `Basic ${wrong}`, 'content-type': 'application/json' },
        body: '{"model":"flowloom-local","messages":[{"role":"user","content":"x"}]}',
      }),
      send(t, '/v1/messages', {
        headers: { 'x-api-key': wrong, 'content-type': 'application/json' },
        body: '{"model":"flowloom-local","max_tokens":1,"messages":[{"role":"user","content":"x"}]}',
      }),
      t.get('/api/v1/keys', wrong),
    ];
    for (const res of await Promise.all(cases)) {
      expect(res.status).toBe(401);
      expect(res.text).not.toContain(wrong);
      expect(res.text).not.toContain(wrong.slice(4, 24));
    }
  });
});

describe('provider credentials stay secret', () => {
  async function failWithUpstream(model: string): Promise<TestResponse> {
    const key = (await t.createKey({ name: `upstream-${model}` })).key;
    secrets.push(key);
    const res = await keep(
      t.post('/v1/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }] }, key),
    );
    expect(res.status).toBeGreaterThanOrEqual(400);
    return res;
  }

  it('when an OpenAI upstream echoes its sk- key in an error, then neither the caller nor the events see it', async () => {
    const res = await failWithUpstream('gpt-4o');
    expect(res.text).not.toContain(OPENAI_KEY);
    const failed = (await eventsOf(t)).find((e) => e.data.requestId === res.headers.get('x-request-id'));
    expect(failed).toBeDefined();
    expect(JSON.stringify(failed)).not.toContain(OPENAI_KEY);
  });

  it('when a self-hosted upstream echoes a key without a known prefix, then neither the caller nor the events see it', async () => {
    const res = await failWithUpstream('echo-model');
    expect(res.text).not.toContain(SELF_HOSTED_KEY);
    const failed = (await eventsOf(t)).find((e) => e.data.requestId === res.headers.get('x-request-id'));
    expect(failed).toBeDefined();
    expect(JSON.stringify(failed)).not.toContain(SELF_HOSTED_KEY);
  });

  it('when models and the API description are listed, then no provider credential appears', async () => {
    const key = (await t.createKey({ name: 'lister' })).key;
    secrets.push(key);
    for (const res of [
      await t.get('/v1/models', key),
      await t.get('/api/v1/openapi.json'),
      await t.get('/metrics'),
    ]) {
      expect(res.status).toBe(200);
      expect(res.text).not.toContain(OPENAI_KEY);
      expect(res.text).not.toContain(SELF_HOSTED_KEY);
    }
  });
});

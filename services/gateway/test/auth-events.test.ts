import { GATEWAY_AUTH_FAILED, GATEWAY_AUTH_SUCCEEDED } from '@flowloom/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../src/domain/keys.js';
import { send } from './http-helpers.js';
import { startTestGateway, type TestGateway, type TestResponse } from './support.js';

// Authentication reaches the audit trail: every refused key (model and admin API) and admin logins,
// at most one per key per window. The events carry the key's hint, never the secret.

const MAX_BODY = 64 * 1024;
let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ overrides: { maxBodyBytes: MAX_BODY } });
});
afterAll(async () => {
  await t.close();
});

type Event = Awaited<ReturnType<TestGateway['events']>>[number];

async function authEvents(type: string): Promise<Event[]> {
  return (await t.events()).filter((e) => e.type === type);
}

async function failureFor(res: TestResponse): Promise<Event> {
  const requestId = res.headers.get('x-request-id');
  expect(requestId).toBeTruthy();
  const found = (await authEvents(GATEWAY_AUTH_FAILED)).filter((e) => e.data.requestId === requestId);
  expect(found, `one auth.failed for ${requestId}`).toHaveLength(1);
  return found[0] as Event;
}

function expectNoSecret(event: Event, secret: string): void {
  const text = JSON.stringify(event);
  expect(text).not.toContain(secret);
  expect(text).not.toContain(secret.slice(8));
  expect(text).not.toContain(hashKey(secret));
}

const chat = { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] };

describe('authentication events', () => {
  it('when an unknown key calls the model API, then auth.failed records hint, reason, IP and request id but not the secret', async () => {
    const wrong = 'flk_this-key-does-not-exist-but-looks-real-0123';
    const res = await t.post('/v1/chat/completions', chat, wrong);
    expect(res.status).toBe(401);
    const event = await failureFor(res);
    expect(event.data).toMatchObject({
      surface: 'model',
      api: 'openai',
      reason: 'invalid_api_key',
      keyHint: 'flk_this…',
      sourceIp: '127.0.0.1',
    });
    expect(event.data.keyId).toBeUndefined();
    expectNoSecret(event, wrong);
  });

  it('when a revoked key calls the model API (Anthropic format), then auth.failed names the key and key_revoked', async () => {
    const doomed = await t.createKey({ name: 'doomed' });
    expect((await t.post(`/api/v1/keys/${doomed.id}/revoke`, undefined, t.adminKey)).status).toBe(200);
    const res = await send(t, '/v1/messages', {
      headers: { 'x-api-key': doomed.key, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'flowloom-local',
        max_tokens: 8,
        messages: [{ role: 'user', content: 'x' }],
      }),
    });
    expect(res.status).toBe(401);
    const event = await failureFor(res);
    expect(event.data).toMatchObject({
      surface: 'model',
      api: 'anthropic',
      reason: 'key_revoked',
      keyId: doomed.id,
    });
    expectNoSecret(event, doomed.key);
  });

  // The key is checked before the body is read: refused keys are recorded whatever they sent.
  it.each([
    { what: 'malformed JSON', path: '/v1/chat/completions', type: 'application/json', body: '{"model":' },
    {
      what: 'a body over the limit',
      path: '/v1/messages',
      type: 'application/json',
      body: JSON.stringify({ ...chat, padding: 'x'.repeat(MAX_BODY * 2) }),
    },
    { what: 'a content type it does not take', path: '/v1/embeddings', type: 'text/csv', body: 'a,b' },
    {
      what: 'malformed JSON to the admin API',
      path: '/api/v1/keys',
      type: 'application/json',
      body: '{"name":',
    },
  ])(
    'when an unknown key sends $what, then it is a 401 and auth.failed records it',
    async ({ path, type, body }) => {
      const wrong = `flk_unknown-key-with-a-bad-body-${path.replaceAll('/', '-')}`;
      const res = await send(t, path, {
        headers: { authorization: `Bearer ${wrong}`, 'content-type': type },
        body,
      });
      expect(res.status).toBe(401);
      const event = await failureFor(res);
      expect(event.data).toMatchObject({
        surface: path.startsWith('/api/') ? 'admin' : 'model',
        reason: 'invalid_api_key',
      });
      expectNoSecret(event, wrong);
    },
  );

  it('when the admin API gets a wrong key or a member key, then auth.failed records it on the admin surface', async () => {
    const wrong = 'flk_wrong-admin-key-0123456789abcdefghij';
    const unknown = await t.get('/api/v1/keys', wrong);
    expect(unknown.status).toBe(401);
    expect((await failureFor(unknown)).data).toMatchObject({ surface: 'admin', reason: 'invalid_api_key' });
    expectNoSecret(await failureFor(unknown), wrong);

    const member = await t.createKey({ name: 'not-an-admin' });
    const forbidden = await t.get('/api/v1/keys', member.key);
    expect(forbidden.status).toBe(403);
    const event = await failureFor(forbidden);
    expect(event.data).toMatchObject({ surface: 'admin', reason: 'forbidden', keyId: member.id });
    expectNoSecret(event, member.key);

    const missing = await send(t, '/api/v1/keys', { method: 'GET' });
    expect(missing.status).toBe(401);
    expect((await failureFor(missing)).data).toMatchObject({ surface: 'admin', reason: 'missing_api_key' });
  });

  it('when an admin calls the admin API many times, then one auth.succeeded is recorded for the key', async () => {
    for (let i = 0; i < 5; i++) expect((await t.get('/api/v1/keys', t.adminKey)).status).toBe(200);
    const logins = await authEvents(GATEWAY_AUTH_SUCCEEDED);
    expect(logins).toHaveLength(1);
    expect(logins[0]?.data).toMatchObject({
      surface: 'admin',
      api: 'admin',
      keyHint: t.adminKey.slice(0, 8) + '…',
    });
    expect(String(logins[0]?.data.actor)).toMatch(/^key\//);
    expect(logins[0]?.data.dedupSeconds).toBeGreaterThan(0);
    expectNoSecret(logins[0] as Event, t.adminKey);
  });

  it('when a member key makes model requests, then no authentication event is added', async () => {
    const member = await t.createKey({ name: 'busy' });
    const before = (await t.events()).filter((e) => e.type.includes('.auth.')).length;
    for (let i = 0; i < 3; i++)
      expect((await t.post('/v1/chat/completions', chat, member.key)).status).toBe(200);
    const after = (await t.events()).filter((e) => e.type.includes('.auth.')).length;
    expect(after).toBe(before);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../src/domain/keys.js';
import { openApiDocument } from '../src/http/routes/openapi.js';
import {
  eventsOf,
  expectAnthropicError,
  expectOpenAIError,
  KEY_CHANGED,
  send,
  sleep,
  UUID_V7,
} from './http-helpers.js';
import { startTestGateway, type TestGateway } from './support.js';

interface KeyView {
  id: string;
  name: string;
  owner: string;
  project: string | null;
  team: string | null;
  role: 'admin' | 'member';
  models: string[] | null;
  hint: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedFrom: string | null;
  createdBy: string | null;
  rotatedBy: string | null;
}
type IssuedView = KeyView & { key: string };

let t: TestGateway;
let adminId: string;

const chatBody = { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] };
const messagesBody = { model: 'flowloom-local', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };

async function create(body: Record<string, unknown>): Promise<IssuedView> {
  const res = await t.post('/api/v1/keys', body, t.adminKey);
  expect(res.status, res.text).toBe(201);
  return res.body as IssuedView;
}

async function listKeys(query = ''): Promise<KeyView[]> {
  const res = await t.get(`/api/v1/keys${query}`, t.adminKey);
  expect(res.status, res.text).toBe(200);
  return (res.body as { data: KeyView[] }).data;
}

const chat = (key: string) => t.post('/v1/chat/completions', chatBody, key);
const messages = (key: string) =>
  send(t, '/v1/messages', {
    headers: { 'x-api-key': key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(messagesBody),
  });

async function keyEvents(keyId: string) {
  return (await eventsOf(t)).filter((e) => e.type === KEY_CHANGED && e.data.keyId === keyId);
}

beforeAll(async () => {
  t = await startTestGateway();
  const admin = (await listKeys()).find((k) => k.name === 'bootstrap-admin');
  if (!admin) throw new Error('the bootstrap admin key is missing from the list');
  adminId = admin.id;
});
afterAll(async () => t.close());

describe('creating and listing keys', () => {
  it('when a key is created, then its secret is returned once, starts with flk_, and is never listed or shown again', async () => {
    const issued = await create({ name: 'ci', project: 'alpha', team: 'core', models: ['flowloom-local'] });
    expect(issued.key).toMatch(/^flk_[A-Za-z0-9_-]{43}$/);
    expect(issued.id).toMatch(UUID_V7);
    expect(issued).toMatchObject({
      name: 'ci',
      project: 'alpha',
      team: 'core',
      role: 'member',
      models: ['flowloom-local'],
      owner: 'admin',
      expiresAt: null,
      revokedAt: null,
      rotatedFrom: null,
      hint: `${issued.key.slice(0, 8)}…`,
    });

    const list = await t.get('/api/v1/keys?includeRevoked=true', t.adminKey);
    const shown = await t.get(`/api/v1/keys/${issued.id}`, t.adminKey);
    expect(shown.status).toBe(200);
    for (const res of [list, shown]) {
      expect(res.text).not.toContain(issued.key);
      expect(res.text).not.toContain(hashKey(issued.key));
      expect(res.text).not.toContain(hashKey(t.adminKey));
      expect(res.text).not.toContain(t.adminKey);
    }
    const listed = (list.body as { data: Array<Record<string, unknown>> }).data.find(
      (k) => k.id === issued.id,
    );
    expect(listed).toBeDefined();
    expect(Object.keys(listed ?? {})).not.toContain('key');
    expect(Object.keys(listed ?? {}).some((k) => /hash|secret/i.test(k))).toBe(false);
    const { key: _secret, ...view } = issued;
    expect(shown.body).toEqual(view);
  });

  it('when the new key is used, then it works at once', async () => {
    const issued = await create({ name: 'fresh' });
    const res = await chat(issued.key);
    expect(res.status, res.text).toBe(200);
  });

  it('when keys are listed by project, then only that project appears; revoked ones only on request', async () => {
    const a1 = await create({ name: 'a1', project: 'list-a' });
    const a2 = await create({ name: 'a2', project: 'list-a' });
    const b1 = await create({ name: 'b1', project: 'list-b' });
    await t.post(`/api/v1/keys/${a2.id}/revoke`, undefined, t.adminKey);

    expect((await listKeys('?project=list-a')).map((k) => k.id)).toEqual([a1.id]);
    const withRevoked = await listKeys('?project=list-a&includeRevoked=true');
    expect(withRevoked.map((k) => k.id)).toEqual([a1.id, a2.id]);
    expect(withRevoked[1]?.revokedAt).not.toBeNull();
    expect((await listKeys('?project=list-b')).map((k) => k.id)).toEqual([b1.id]);
    expect(await listKeys('?project=nobody')).toEqual([]);
    const all = (await listKeys()).map((k) => k.id);
    expect(all).toEqual(expect.arrayContaining([a1.id, b1.id]));
    expect(all).not.toContain(a2.id);
  });

  it('when includeRevoked is not true or false, then the list is refused with 400', async () => {
    const error = expectOpenAIError(
      await t.get('/api/v1/keys?includeRevoked=yes', t.adminKey),
      400,
      'invalid_request',
    );
    expect(error.param).toBe('includeRevoked');
  });

  it('when a create body is invalid, then it is refused with 400 naming the field, and no key is made', async () => {
    const before = await listKeys('?includeRevoked=true');
    const cases: Array<[unknown, string]> = [
      [{}, 'name'],
      [{ name: '' }, 'name'],
      [{ name: 'x', role: 'root' }, 'role'],
      [{ name: 'x', models: 'gpt-4o' }, 'models'],
      [{ name: 'x', expiresAt: 'tomorrow' }, 'expiresAt'],
      [{ name: 'x', expiresInDays: -1 }, 'expiresInDays'],
      [{ name: 'x', secret: 'flk_mine' }, ''],
    ];
    for (const [body, param] of cases) {
      const error = expectOpenAIError(await t.post('/api/v1/keys', body, t.adminKey), 400, 'invalid_request');
      if (param) expect(error.param, JSON.stringify(body)).toBe(param);
    }
    expect(await listKeys('?includeRevoked=true')).toEqual(before);
  });
});

describe('expiry', () => {
  it('when expiresAt is in the past, then creation is refused with 400 and nothing is created', async () => {
    const before = await listKeys('?includeRevoked=true');
    const error = expectOpenAIError(
      await t.post(
        '/api/v1/keys',
        { name: 'late', expiresAt: new Date(Date.now() - 60_000).toISOString() },
        t.adminKey,
      ),
      400,
      'invalid_request',
    );
    expect(error.param).toBe('expiresAt');
    expect(await listKeys('?includeRevoked=true')).toEqual(before);
  });

  it('when both expiresAt and expiresInDays are given, then creation is refused', async () => {
    const res = await t.post(
      '/api/v1/keys',
      { name: 'both', expiresAt: new Date(Date.now() + 86_400_000).toISOString(), expiresInDays: 1 },
      t.adminKey,
    );
    expectOpenAIError(res, 400, 'invalid_request');
  });

  it('when expiresInDays is given, then the expiry is that many days ahead', async () => {
    const issued = await create({ name: 'days', expiresInDays: 2 });
    const expires = new Date(issued.expiresAt ?? 0).getTime();
    expect(Math.abs(expires - (Date.now() + 2 * 86_400_000))).toBeLessThan(60_000);
  });

  it('when a key reaches its expiry, then it is refused with key_expired in both formats', async () => {
    const expiresAt = new Date(Date.now() + 1_500);
    const issued = await create({ name: 'short', expiresAt: expiresAt.toISOString() });
    // On a busy machine the first call may already be late; it must work only while the key is valid.
    if (Date.now() < expiresAt.getTime() - 500) expect((await chat(issued.key)).status).toBe(200);
    await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 50);
    const error = expectOpenAIError(await chat(issued.key), 401, 'key_expired');
    expect(error.type).toBe('authentication_error');
    expectAnthropicError(await messages(issued.key), 401, 'authentication_error');
  });
});

describe('revoking', () => {
  it('when a key in use is revoked, then it gets 401 key_revoked at once, in OpenAI and Anthropic format', async () => {
    const issued = await create({ name: 'to-revoke', project: 'alpha' });
    expect((await chat(issued.key)).status).toBe(200);
    expect((await messages(issued.key)).status).toBe(200);

    const res = await t.post(`/api/v1/keys/${issued.id}/revoke`, undefined, t.adminKey);
    expect(res.status, res.text).toBe(200);
    const revoked = res.body as KeyView;
    expect(revoked.id).toBe(issued.id);
    expect(revoked.revokedAt).not.toBeNull();
    expect(res.text).not.toContain(issued.key);

    const openai = expectOpenAIError(await chat(issued.key), 401, 'key_revoked');
    expect(openai.type).toBe('authentication_error');
    expect(openai.message).toMatch(/revoked/);
    const anthropic = expectAnthropicError(await messages(issued.key), 401, 'authentication_error');
    expect(anthropic.message).toMatch(/revoked/);
    expectOpenAIError(
      await t.post('/v1/embeddings', { model: 'flowloom-local-embedding', input: 'x' }, issued.key),
      401,
      'key_revoked',
    );
    expectOpenAIError(await t.get('/v1/models', issued.key), 401, 'key_revoked');
  });

  it('when a revoked key is rotated, then it is refused with 409 and no replacement is issued', async () => {
    const issued = await create({ name: 'dead', project: 'rotate-dead' });
    await t.post(`/api/v1/keys/${issued.id}/revoke`, undefined, t.adminKey);
    expectOpenAIError(
      await t.post(`/api/v1/keys/${issued.id}/rotate`, { gracePeriodSeconds: 0 }, t.adminKey),
      409,
      'conflict',
    );
    expect((await listKeys('?project=rotate-dead&includeRevoked=true')).map((k) => k.id)).toEqual([
      issued.id,
    ]);
    // The API reference tells clients about this answer.
    expect(openApiDocument.paths['/api/v1/keys/{id}/rotate'].post.responses).toHaveProperty('409');
  });

  it('when a key tries to revoke itself, then it is refused with 409 and keeps working', async () => {
    expectOpenAIError(await t.post(`/api/v1/keys/${adminId}/revoke`, undefined, t.adminKey), 409, 'conflict');
    expect((await t.get('/api/v1/keys', t.adminKey)).status).toBe(200);
    const self = (await listKeys()).find((k) => k.id === adminId);
    expect(self?.revokedAt).toBeNull();
  });
});

describe('rotating', () => {
  it('when a key is rotated with a grace period, then the old key works until it ends and the new key works', async () => {
    const old = await create({ name: 'rotating', project: 'beta', models: ['flowloom-*'] });
    expect((await chat(old.key)).status).toBe(200);
    const started = Date.now();
    const res = await t.post(`/api/v1/keys/${old.id}/rotate`, { gracePeriodSeconds: 1 }, t.adminKey);
    expect(res.status, res.text).toBe(201);
    const fresh = res.body as IssuedView;
    expect(fresh.key).toMatch(/^flk_/);
    expect(fresh.key).not.toBe(old.key);
    expect(fresh.id).not.toBe(old.id);
    expect(fresh).toMatchObject({
      rotatedFrom: old.id,
      name: 'rotating',
      project: 'beta',
      models: ['flowloom-*'],
    });

    const oldView = (await t.get(`/api/v1/keys/${old.id}`, t.adminKey)).body as KeyView;
    const graceEnd = new Date(oldView.expiresAt ?? 0).getTime();
    expect(Math.abs(graceEnd - (started + 1_000))).toBeLessThan(5_000);

    if (Date.now() < graceEnd - 200) expect((await chat(old.key)).status).toBe(200);
    expect((await chat(fresh.key)).status).toBe(200);
    await sleep(Math.max(0, graceEnd - Date.now()) + 50);
    expectOpenAIError(await chat(old.key), 401, 'key_expired');
    expectAnthropicError(await messages(old.key), 401, 'authentication_error');
    expect((await chat(fresh.key)).status).toBe(200);
  });

  it('when a key is rotated with gracePeriodSeconds 0, then the old key stops at once and the new one works', async () => {
    const old = await create({ name: 'rotate-now' });
    expect((await chat(old.key)).status).toBe(200);
    const res = await t.post(`/api/v1/keys/${old.id}/rotate`, { gracePeriodSeconds: 0 }, t.adminKey);
    expect(res.status, res.text).toBe(201);
    const fresh = res.body as IssuedView;
    expectOpenAIError(await chat(old.key), 401, 'key_expired');
    expect((await chat(fresh.key)).status).toBe(200);
  });

  it('when no grace period is given, then the old key keeps working for an hour', async () => {
    const old = await create({ name: 'rotate-default' });
    const res = await t.post(`/api/v1/keys/${old.id}/rotate`, undefined, t.adminKey);
    expect(res.status, res.text).toBe(201);
    const oldView = (await t.get(`/api/v1/keys/${old.id}`, t.adminKey)).body as KeyView;
    expect(Math.abs(new Date(oldView.expiresAt ?? 0).getTime() - (Date.now() + 3_600_000))).toBeLessThan(
      60_000,
    );
    expect((await chat(old.key)).status).toBe(200);
  });

  it('when the key had an expiry, then rotation never extends the old key beyond it', async () => {
    const expiresAt = new Date(Date.now() + 120_000).toISOString();
    const old = await create({ name: 'rotate-expiring', expiresAt });
    await t.post(`/api/v1/keys/${old.id}/rotate`, { gracePeriodSeconds: 3_600 }, t.adminKey);
    const oldView = (await t.get(`/api/v1/keys/${old.id}`, t.adminKey)).body as KeyView;
    expect(oldView.expiresAt).toBe(expiresAt);
  });

  it('when the grace period is negative, fractional or too long, then rotation is refused and nothing changes', async () => {
    const old = await create({ name: 'rotate-bad', project: 'rotate-bad' });
    for (const gracePeriodSeconds of [-1, 1.5, 31 * 86_400, '60']) {
      const res = await t.post(`/api/v1/keys/${old.id}/rotate`, { gracePeriodSeconds }, t.adminKey);
      expect(expectOpenAIError(res, 400, 'invalid_request').param).toBe('gracePeriodSeconds');
    }
    const keys = await listKeys('?project=rotate-bad&includeRevoked=true');
    expect(keys.map((k) => k.id)).toEqual([old.id]);
    expect(keys[0]?.expiresAt).toBeNull();
  });
});

describe('who may administer keys', () => {
  it('when a member key calls an admin endpoint, then it gets 403 forbidden and nothing changes', async () => {
    const member = await create({ name: 'member' });
    const victim = await create({ name: 'victim' });
    const before = await listKeys('?includeRevoked=true');
    const calls = [
      t.get('/api/v1/keys', member.key),
      t.get(`/api/v1/keys/${victim.id}`, member.key),
      t.post('/api/v1/keys', { name: 'escalate', role: 'admin' }, member.key),
      t.post(`/api/v1/keys/${victim.id}/revoke`, undefined, member.key),
      t.post(`/api/v1/keys/${victim.id}/rotate`, { gracePeriodSeconds: 0 }, member.key),
    ];
    for (const res of await Promise.all(calls)) {
      const error = expectOpenAIError(res, 403, 'forbidden');
      expect(error.type).toBe('permission_error');
    }
    expect(await listKeys('?includeRevoked=true')).toEqual(before);
    expect((await chat(victim.key)).status).toBe(200);
  });

  it('when an admin endpoint is called without a key or with an unknown one, then it is 401', async () => {
    expectOpenAIError(await t.get('/api/v1/keys'), 401, 'missing_api_key');
    expectOpenAIError(
      await t.get('/api/v1/keys', 'flk_not-a-real-key-at-all-0000000000000000'),
      401,
      'invalid_api_key',
    );
  });

  it('when a key is created with the admin role, then it may administer keys', async () => {
    const admin2 = await create({ name: 'second-admin', role: 'admin' });
    expect((await t.get('/api/v1/keys', admin2.key)).status).toBe(200);
  });
});

describe('lineage: who created each key', () => {
  it('when admins create and rotate keys, then each key names its creator, a rotation keeps it, and the lineage follows creators and rotators', async () => {
    const bootstrap = (await listKeys()).find((k) => k.id === adminId);
    expect(bootstrap?.createdBy).toBeNull();
    const alice = await create({ name: 'alice', owner: 'alice', role: 'admin' });
    expect(alice.createdBy).toBe(adminId);
    const bob = await create({ name: 'bob', owner: 'bob', role: 'admin' });

    const byAlice = await t.post(
      '/api/v1/keys',
      { name: 'puppet', owner: 'someone-else', role: 'admin' },
      alice.key,
    );
    expect(byAlice.status, byAlice.text).toBe(201);
    const puppet = byAlice.body as IssuedView;
    expect(puppet).toMatchObject({ createdBy: alice.id, owner: 'someone-else', rotatedBy: null });
    expect((await keyEvents(puppet.id))[0]?.data).toMatchObject({ action: 'created', createdBy: alice.id });

    // Bob rotates the puppet: the new key keeps alice's key as creator, and names bob as rotator.
    const res = await t.post(`/api/v1/keys/${puppet.id}/rotate`, { gracePeriodSeconds: 0 }, bob.key);
    expect(res.status, res.text).toBe(201);
    const rotated = res.body as IssuedView;
    expect(rotated).toMatchObject({ createdBy: alice.id, rotatedBy: bob.id, rotatedFrom: puppet.id });
    expect((await t.get(`/api/v1/keys/${rotated.id}`, t.adminKey)).body).toMatchObject({
      createdBy: alice.id,
      rotatedBy: bob.id,
    });

    const authorized = await t.gateway.authorizeAdmin({ authorization: `Bearer ${rotated.key}` });
    expect(authorized).toMatchObject({ keyId: rotated.id, owner: 'someone-else', root: false });
    expect(new Set(authorized.lineage.map((a) => a.keyId))).toEqual(
      new Set([alice.id, puppet.id, bob.id, adminId]),
    );
    expect(authorized.lineage.find((a) => a.keyId === adminId)).toMatchObject({ root: true });
    const root = await t.gateway.authorizeAdmin({ authorization: `Bearer ${t.adminKey}` });
    expect(root).toMatchObject({ keyId: adminId, root: true, lineage: [] });
  });
});

describe('unknown and malformed ids', () => {
  const unknown = '01900000-0000-7000-8000-000000000000';

  it('when the id is unknown, then show, revoke and rotate answer 404 not_found', async () => {
    expectOpenAIError(await t.get(`/api/v1/keys/${unknown}`, t.adminKey), 404, 'not_found');
    expectOpenAIError(
      await t.post(`/api/v1/keys/${unknown}/revoke`, undefined, t.adminKey),
      404,
      'not_found',
    );
    expectOpenAIError(
      await t.post(`/api/v1/keys/${unknown}/rotate`, { gracePeriodSeconds: 0 }, t.adminKey),
      404,
      'not_found',
    );
  });

  it('when the id is not a UUID, then it is a 400 naming the id', async () => {
    for (const id of ['abc', '1', "1'%20or%20'1'='1", 'ffffffff-ffff-ffff-ffff-fffffffffffffff']) {
      const error = expectOpenAIError(await t.get(`/api/v1/keys/${id}`, t.adminKey), 400, 'invalid_request');
      expect(error.param).toBe('id');
      expectOpenAIError(
        await t.post(`/api/v1/keys/${id}/revoke`, undefined, t.adminKey),
        400,
        'invalid_request',
      );
    }
  });
});

describe('model allow-lists', () => {
  it('when a key may use only some models, then others are refused with 403 model_not_allowed in the caller format', async () => {
    const issued = await create({ name: 'narrow', models: ['flowloom-local'] });
    expect((await chat(issued.key)).status).toBe(200);
    const error = expectOpenAIError(
      await t.post('/v1/chat/completions', { ...chatBody, model: 'flowloom-local-embedding' }, issued.key),
      403,
      'model_not_allowed',
    );
    expect(error.param).toBe('model');
    expect(error.type).toBe('permission_error');
    expectOpenAIError(
      await t.post('/v1/embeddings', { model: 'flowloom-local-embedding', input: 'x' }, issued.key),
      403,
      'model_not_allowed',
    );
    const res = await send(t, '/v1/messages', {
      headers: { 'x-api-key': issued.key, 'content-type': 'application/json' },
      body: JSON.stringify({ ...messagesBody, model: 'flowloom-local-embedding' }),
    });
    expectAnthropicError(res, 403, 'permission_error');
  });

  it('when a key has an allow-list, then GET /v1/models lists only the models it may use', async () => {
    const narrow = await create({ name: 'narrow-list', models: ['flowloom-local'] });
    const prefix = await create({ name: 'prefix-list', models: ['flowloom-local*'] });
    const open = await create({ name: 'open-list' });
    const ids = async (key: string) => {
      const res = await t.get('/v1/models', key);
      expect(res.status).toBe(200);
      const body = res.body as { object: string; data: Array<{ id: string; object: string }> };
      expect(body.object).toBe('list');
      for (const m of body.data) expect(m.object).toBe('model');
      return body.data.map((m) => m.id).sort();
    };
    expect(await ids(narrow.key)).toEqual(['flowloom-local']);
    expect(await ids(prefix.key)).toEqual(['flowloom-local', 'flowloom-local-embedding']);
    expect(await ids(open.key)).toEqual(['flowloom-local', 'flowloom-local-embedding']);
  });
});

describe('key change events', () => {
  it('when a key is created, rotated and revoked, then each change is an event naming the actor', async () => {
    const issued = await create({ name: 'audited', project: 'gamma' });
    const rotated = (await t.post(`/api/v1/keys/${issued.id}/rotate`, { gracePeriodSeconds: 0 }, t.adminKey))
      .body as IssuedView;
    expect((await t.post(`/api/v1/keys/${rotated.id}/revoke`, undefined, t.adminKey)).status).toBe(200);

    const actor = `key/${adminId} (bootstrap-admin)`;
    const created = await keyEvents(issued.id);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({
      type: KEY_CHANGED,
      subject: `key/${issued.id}`,
      data: { keyId: issued.id, action: 'created', actor, name: 'audited', project: 'gamma' },
    });
    const replacement = await keyEvents(rotated.id);
    expect(replacement.map((e) => e.data.action)).toEqual(['rotated', 'revoked']);
    for (const e of replacement) expect(e.data).toMatchObject({ keyId: rotated.id, actor, name: 'audited' });
  });

  it('when a key change is refused, then no event is recorded', async () => {
    const before = (await eventsOf(t)).filter((e) => e.type === KEY_CHANGED).length;
    await t.post('/api/v1/keys', { name: 'x', expiresAt: '2000-01-01T00:00:00Z' }, t.adminKey);
    await t.post(`/api/v1/keys/${adminId}/revoke`, undefined, t.adminKey);
    await t.post('/api/v1/keys/01900000-0000-7000-8000-000000000000/revoke', undefined, t.adminKey);
    expect((await eventsOf(t)).filter((e) => e.type === KEY_CHANGED)).toHaveLength(before);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '@flowloom/config';
import { loadService } from '@flowloom/grpc';
import { createLogger } from '@flowloom/telemetry';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlKeyStore } from '../src/adapters/sql-key-store.js';
import { hashKey } from '../src/domain/keys.js';
import { type Gateway, startGateway } from '../src/main.js';

// flowloom.gateway.v1.KeysAdmin with a real grpc-js client against a gateway on its embedded
// database (PGlite), compared with the HTTP admin API of the same gateway. Every log line is kept, to
// show that no secret reaches the logs.

const ADMIN_KEY = 'flk_grpc-admin-key-0123456789abcdefghijklmnop';

type Message = Record<string, unknown>;
type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void,
) => void;
interface Result<T> {
  response?: T;
  error?: grpc.ServiceError;
}

let dir: string;
let gateway: Gateway;
const logLines: string[] = [];
const secrets: string[] = [ADMIN_KEY];
const errorDetails: string[] = [];
let keysClient: grpc.Client & Record<string, UnaryMethod>;
let gatewayClient: grpc.Client & Record<string, UnaryMethod>;

function client(service: string): grpc.Client & Record<string, UnaryMethod> {
  const Service = loadService('flowloom/gateway/v1/gateway.proto', ['flowloom', 'gateway', 'v1', service]);
  return new Service(gateway.grpcAddress, grpc.credentials.createInsecure()) as unknown as grpc.Client &
    Record<string, UnaryMethod>;
}

function metadataFor(key?: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (key) metadata.set('authorization', `Bearer ${key}`);
  return metadata;
}

function call<T = Message>(
  on: grpc.Client & Record<string, UnaryMethod>,
  method: string,
  request: object,
  key?: string,
): Promise<Result<T>> {
  return new Promise((resolve) =>
    on[method]!.call(on, request, metadataFor(key), { deadline: Date.now() + 10_000 }, (error, response) => {
      if (error) errorDetails.push(error.details);
      resolve(error ? { error } : { response: response as T });
    }),
  );
}
const admin = <T = Message>(method: string, request: object, key = ADMIN_KEY) =>
  call<T>(keysClient, method, request, key);

function ok<T>(result: Result<T>): T {
  if (result.error) throw new Error(`expected an answer, got ${result.error.code}: ${result.error.details}`);
  return result.response!;
}
function failed(result: Result<unknown>): grpc.ServiceError {
  if (!result.error) throw new Error(`expected a failure, got ${JSON.stringify(result.response)}`);
  return result.error;
}

/** Whether a key is let in by the model API (gRPC ListModels). */
async function works(key: string): Promise<boolean | grpc.status> {
  const result = await call(gatewayClient, 'listModels', {}, key);
  return result.error ? result.error.code : true;
}

async function httpGet(path: string): Promise<{ status: number; body: Message }> {
  const res = await fetch(`${gateway.httpUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return { status: res.status, body: (await res.json()) as Message };
}

async function published(): Promise<Array<{ type: string; data: Message }>> {
  await gateway.flushOutbox();
  return events;
}
const events: Array<{ type: string; data: Message }> = [];

async function issue(request: object = {}): Promise<{ key: Message; secret: string }> {
  const issued = ok(await admin<{ key: Message; secret: string }>('createKey', { name: 'ci', ...request }));
  secrets.push(issued.secret);
  return issued;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-grpc-keys-'));
  const config = loadConfig({
    env: {},
    cwd: dir,
    overrides: { httpPort: 0, grpcPort: 0, adminKey: ADMIN_KEY, dataDir: dir, logLevel: 'debug' },
  });
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  gateway = await startGateway({
    config,
    env: {},
    logger: createLogger({ service: 'gateway', level: 'debug', destination }),
  });
  await gateway.bus.subscribe('test-recorder', async (event) => {
    events.push(event as { type: string; data: Message });
  });
  keysClient = client('KeysAdmin');
  gatewayClient = client('Gateway');
});

afterAll(async () => {
  keysClient?.close();
  gatewayClient?.close();
  await gateway?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('KeysAdmin over gRPC', () => {
  it('when a call has no key or a member key, then it fails UNAUTHENTICATED or PERMISSION_DENIED, and the refusal is recorded', async () => {
    expect(failed(await admin('listKeys', {}, '')).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(failed(await admin('listKeys', {}, 'flk_not-a-key-at-all-00000000000000000')).code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    const member = await issue({ name: 'member' });
    const refused = failed(await admin('createKey', { name: 'escalate', role: 'admin' }, member.secret));
    expect(refused.code).toBe(grpc.status.PERMISSION_DENIED);
    const failures = (await published()).filter((e) => e.type === 'dev.flowloom.gateway.auth.failed.v1');
    expect(failures.map((e) => e.data.reason)).toEqual(
      expect.arrayContaining(['missing_api_key', 'invalid_api_key', 'forbidden']),
    );
    for (const failure of failures)
      expect(failure.data).toMatchObject({ surface: 'admin', api: 'admin', sourceIp: '127.0.0.1' });
  });

  it('when a key is created, then its secret comes once, works, and is never shown again', async () => {
    const { key, secret } = await issue({
      name: 'nightly',
      project: 'search',
      team: 'platform',
      job: 'nightly-eval',
      models: ['flowloom-local*'],
      expiresInDays: 30,
    });
    expect(secret).toMatch(/^flk_/);
    expect(secret.startsWith((key.hint as string).replace(/…$/, ''))).toBe(true);
    expect(key).toMatchObject({
      name: 'nightly',
      owner: 'admin',
      project: 'search',
      team: 'platform',
      job: 'nightly-eval',
      role: 'member',
      models: ['flowloom-local*'],
      revokedAt: '',
      rotatedFrom: '',
      rotatedBy: '',
    });
    expect(key.createdBy).toMatch(/^[0-9a-f-]{36}$/);
    const expires = Date.parse(key.expiresAt as string) - Date.now();
    expect(expires).toBeGreaterThan(29.9 * 86_400_000);
    expect(expires).toBeLessThan(30.1 * 86_400_000);
    expect(await works(secret)).toBe(true);

    const shown = ok(await admin<Message>('getKey', { id: key.id }));
    expect(shown).toEqual(key);
    const overHttp = await httpGet(`/api/v1/keys/${key.id}`);
    expect(overHttp.status).toBe(200);
    expect(shown).toEqual({
      ...overHttp.body,
      revokedAt: '',
      rotatedFrom: '',
      rotatedBy: '',
      suspendedAt: '',
      policy: '',
    });
    const listed = ok(await admin<{ keys: Message[] }>('listKeys', { project: 'search' }));
    expect(listed.keys.map((k) => k.id)).toEqual([key.id]);
    const everything = JSON.stringify([shown, listed]);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(hashKey(secret));
    const created = (await published()).filter(
      (e) => e.type === 'dev.flowloom.gateway.key.changed.v1' && e.data.keyId === key.id,
    );
    expect(created).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({ action: 'created', actor: expect.stringMatching(/^key\//) }),
      }),
    ]);
  });

  it('when the input is bad, then the call fails INVALID_ARGUMENT with a clear message, and no key is made or changed', async () => {
    const before = ok(await admin<{ keys: Message[] }>('listKeys', { includeRevoked: true })).keys;
    const eventsBefore = (await published()).length;
    const target = before.find((k) => k.role === 'member')!;
    const cases: Array<[string, object, RegExp]> = [
      ['createKey', {}, /^name: /],
      ['createKey', { name: 'x'.repeat(201) }, /^name: /],
      ['createKey', { name: 'bad', role: 'root' }, /^role: /],
      ['createKey', { name: 'bad', job: 'has space' }, /^job: job must be 1-200 printable ASCII characters/],
      ['createKey', { name: 'bad', expiresAt: 'tomorrow' }, /^expiresAt: /],
      ['createKey', { name: 'bad', expiresAt: '2020-01-01T00:00:00Z' }, /expiresAt must be in the future/],
      [
        'createKey',
        { name: 'bad', expiresAt: '2999-01-01T00:00:00Z', expiresInDays: 3 },
        /Give expiresAt or expiresInDays, not both/,
      ],
      ['createKey', { name: 'bad', expiresInDays: -1 }, /^expiresInDays: /],
      ['createKey', { name: 'bad', models: [''] }, /^models\.0: /],
      ['getKey', { id: 'not-a-uuid' }, /^id: id must be a key id \(a UUID\)/],
      ['revokeKey', {}, /^id: /],
      ['rotateKey', { id: target.id, gracePeriodSeconds: 30 * 86400 + 1 }, /^gracePeriodSeconds: /],
      ['rotateKey', { id: target.id, gracePeriodSeconds: -5 }, /^gracePeriodSeconds: /],
    ];
    for (const [method, request, message] of cases) {
      const error = failed(await admin(method, request));
      expect(error.code, `${method} ${JSON.stringify(request)}: ${error.details}`).toBe(
        grpc.status.INVALID_ARGUMENT,
      );
      expect(error.details, `${method} ${JSON.stringify(request)}`).toMatch(message);
    }
    expect(ok(await admin<{ keys: Message[] }>('listKeys', { includeRevoked: true })).keys).toEqual(before);
    expect((await published()).length).toBe(eventsBefore);
  });

  it('when a key is revoked, then it is refused at once; an unknown id is NOT_FOUND and the calling key cannot revoke itself', async () => {
    const { key, secret } = await issue({ name: 'to-revoke' });
    expect(await works(secret)).toBe(true);
    const revoked = ok(await admin<Message>('revokeKey', { id: key.id }));
    expect(revoked.revokedAt).toMatch(/^\d{4}-/);
    expect(await works(secret)).toBe(grpc.status.UNAUTHENTICATED);
    expect(ok(await admin<{ keys: Message[] }>('listKeys', {})).keys.map((k) => k.id)).not.toContain(key.id);
    expect(
      ok(await admin<{ keys: Message[] }>('listKeys', { includeRevoked: true })).keys.map((k) => k.id),
    ).toContain(key.id);

    const unknown = failed(await admin('revokeKey', { id: '01890000-0000-7000-8000-000000000000' }));
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
    const self = ok(await admin<{ keys: Message[] }>('listKeys', {})).keys.find(
      (k) => k.name === 'bootstrap-admin',
    )!;
    const own = failed(await admin('revokeKey', { id: self.id }));
    expect(own.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(own.details).toBe('A key cannot revoke itself; use another admin key.');
    expect(await works(ADMIN_KEY)).toBe(true);
    expect(failed(await admin('rotateKey', { id: key.id })).code).toBe(grpc.status.FAILED_PRECONDITION);
  });

  it('when a key is rotated, then the new secret works at once and the old one only for the grace period', async () => {
    const old = await issue({ name: 'rotating', project: 'search', models: ['flowloom-local'] });
    const rotated = ok(
      await admin<{ key: Message; secret: string }>('rotateKey', { id: old.key.id, gracePeriodSeconds: 2 }),
    );
    secrets.push(rotated.secret);
    expect(rotated.secret).not.toBe(old.secret);
    expect(rotated.key).toMatchObject({
      name: 'rotating',
      project: 'search',
      models: ['flowloom-local'],
      rotatedFrom: old.key.id,
      createdBy: old.key.createdBy,
    });
    expect(await works(rotated.secret)).toBe(true);
    expect(await works(old.secret)).toBe(true);
    const graceEnds = Date.parse(ok(await admin<Message>('getKey', { id: old.key.id })).expiresAt as string);
    expect(graceEnds - Date.now()).toBeLessThanOrEqual(2_000);
    await new Promise((r) => setTimeout(r, Math.max(0, graceEnds - Date.now()) + 100));
    expect(await works(old.secret)).toBe(grpc.status.UNAUTHENTICATED);
    expect(await works(rotated.secret)).toBe(true);

    // Without a grace period given, the old key keeps working for an hour, as over HTTP.
    const other = await issue({ name: 'default-grace' });
    const next = ok(await admin<{ key: Message; secret: string }>('rotateKey', { id: other.key.id }));
    secrets.push(next.secret);
    const until = Date.parse(ok(await admin<Message>('getKey', { id: other.key.id })).expiresAt as string);
    expect(Math.round((until - Date.now()) / 60_000)).toBe(60);
    expect(await works(other.secret)).toBe(true);
  });

  it('when a key suspended by a policy is resumed, then it works again and shows as active; resuming an active key is FAILED_PRECONDITION', async () => {
    const issued = await issue({ name: 'suspended' });
    const id = issued.key.id as string;
    // As the policy gate does for suspend_key (here on a key never used, so no replica has it cached).
    await new SqlKeyStore(gateway.db).suspend(id, new Date(), {
      by: 'policy/guard@0123456789ab rule abuse',
      reason: 'abuse',
      decisionId: 'decision-1',
      policy: 'guard',
      rule: 'abuse',
    });
    expect(await works(issued.secret)).toBe(grpc.status.PERMISSION_DENIED);
    expect(ok(await admin('getKey', { id }))).toMatchObject({
      status: 'suspended',
      suspension: { decisionId: 'decision-1', policy: 'guard', rule: 'abuse', reason: 'abuse' },
    });
    expect(ok(await admin<{ keys: Message[] }>('listKeys', {})).keys.find((k) => k.id === id)).toMatchObject({
      status: 'suspended',
    });

    expect(ok(await admin('resumeKey', { id }))).toMatchObject({ id, status: 'active', suspendedAt: '' });
    expect(await works(issued.secret)).toBe(true);
    const again = failed(await admin('resumeKey', { id }));
    expect(again.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(again.details).toContain('is not suspended');
    expect(failed(await admin('resumeKey', { id: 'nope' })).code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('when the health of KeysAdmin is asked, then it is SERVING', async () => {
    const Health = loadService('grpc/health/v1/health.proto', ['grpc', 'health', 'v1', 'Health']);
    const health = new Health(
      gateway.grpcAddress,
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & {
      check(
        request: { service: string },
        callback: (error: grpc.ServiceError | null, response?: { status: string }) => void,
      ): void;
    };
    const status = (service: string) =>
      new Promise<string | grpc.status>((resolve) =>
        health.check({ service }, (error, response) => resolve(error ? error.code : response!.status)),
      );
    expect(await status('flowloom.gateway.v1.KeysAdmin')).toBe('SERVING');
    expect(await status('')).toBe('SERVING');
    health.close();
  });

  it('then no secret, nor its hash, is in any log line, event or error message', async () => {
    await gateway.flushOutbox();
    const logs = logLines.join('\n');
    expect(logLines.length).toBeGreaterThan(0);
    const recorded = JSON.stringify(await published());
    const errors = errorDetails.join('\n');
    expect(secrets.length).toBeGreaterThan(5);
    for (const secret of secrets) {
      for (const [where, text] of [
        ['logs', logs],
        ['events', recorded],
        ['errors', errors],
      ] as const) {
        expect(text.includes(secret), `${where} hold a secret (${secret.slice(0, 8)}…)`).toBe(false);
        expect(text.includes(hashKey(secret)), `${where} hold a secret's hash`).toBe(false);
      }
    }
  });
});

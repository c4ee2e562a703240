import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditGrpcClient } from '@flowloom/audit';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, freePort } from '../bench/processes.js';
import { type OwnPostgres, startOwnPostgres } from './engines.js';
import { migrate, Service } from './services.js';
import { until } from './until.js';

// The admin APIs of `flowloom serve gateway|policy|audit` while PostgreSQL is down, on a cluster of
// this test's own: every call that needs the database answers 503 `unavailable` (gRPC UNAVAILABLE)
// saying so and that it can be retried, with `retry-after`; nothing is changed; no service exits;
// and once PostgreSQL is back the same calls succeed without restarting anything.

const ADMIN = 'flk_faults-pg-admin-api-0123456789abcdefgh';
const POLICY = (name: string) => `name: ${name}
rules:
  - id: block-x
    condition: request.model == "x"
    action: block
`;

let pg: OwnPostgres;
let work = '';
let gateway: Service;
let policy: Service;
let audit: Service;
let auditGrpc = '';
const services: Service[] = [];

beforeAll(async () => {
  const started = Date.now();
  work = mkdtempSync(join(tmpdir(), 'flowloom-faults-admin-'));
  pg = await startOwnPostgres(`faults-admin-${randomBytes(3).toString('hex')}`);
  const common: Record<string, string> = {
    FLOWLOOM_DATABASE_URL: pg.url('flowloom'),
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'warn',
    FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '60000',
  };
  await migrate(common);
  const [gHttp, gGrpc, pHttp, pGrpc, aHttp, aGrpc] = await Promise.all(
    Array.from({ length: 6 }, () => freePort()),
  );
  const at = (name: string, env: Record<string, string>) => ({
    ...common,
    FLOWLOOM_DATA_DIR: join(work, name),
    ...env,
  });
  gateway = new Service(
    'gateway',
    'gateway',
    at('gateway', { FLOWLOOM_HTTP_PORT: String(gHttp), FLOWLOOM_GRPC_PORT: String(gGrpc) }),
    `http://127.0.0.1:${gHttp}`,
  );
  policy = new Service(
    'policy',
    'policy',
    at('policy', { FLOWLOOM_HTTP_PORT: String(pHttp), FLOWLOOM_GRPC_PORT: String(pGrpc) }),
    `http://127.0.0.1:${pHttp}`,
  );
  audit = new Service(
    'audit',
    'audit',
    at('audit', { FLOWLOOM_AUDIT_HTTP_PORT: String(aHttp), FLOWLOOM_AUDIT_GRPC_PORT: String(aGrpc) }),
    `http://127.0.0.1:${aHttp}`,
  );
  auditGrpc = `127.0.0.1:${aGrpc}`;
  services.push(gateway, policy, audit);
  await Promise.all(services.map((service) => service.start()));
  console.log(`[faults] gateway, policy and audit up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 150_000);

afterAll(async () => {
  for (const service of services) await service.stop().catch(() => {});
  await pg?.purge();
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

interface Reply {
  status: number;
  retryAfter: string | null;
  body: unknown;
}

async function call(base: string, method: string, path: string, body?: unknown, key = ADMIN): Promise<Reply> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: text.startsWith('{') ? JSON.parse(text) : text,
  };
}

async function auditGrpcCall(method: string, request: unknown): Promise<grpc.ServiceError | undefined> {
  const Audit = auditGrpcClient();
  const client = new Audit(auditGrpc, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${ADMIN}`);
  try {
    return await new Promise((resolve) => {
      const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method];
      fn?.call(
        client,
        request,
        metadata,
        { deadline: Date.now() + 15_000 },
        (error: grpc.ServiceError | null) => resolve(error ?? undefined),
      );
    });
  } finally {
    client.close();
  }
}

describe('when PostgreSQL is down, the admin APIs', () => {
  it('then answer 503 unavailable with retry-after (gRPC UNAVAILABLE), change nothing, and serve again once it is back', async () => {
    const started = Date.now();
    // Keys and policies that exist before the outage; the admin key is then known to every service.
    const member = await adminCall<{ id: string }>(gateway.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'before-outage',
    });
    // Policies are pushed with a personal admin key (the bootstrap key may not author them).
    const ops = await adminCall<{ key: string }>(gateway.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'ops',
      owner: 'ops',
      role: 'admin',
    });
    await adminCall(policy.url, ops.key, 'POST', '/api/v1/policies', { source: POLICY('kept') });
    await adminCall(policy.url, ADMIN, 'GET', '/api/v1/policies');
    await adminCall(audit.url, ADMIN, 'GET', '/api/v1/audit/entries?limit=1');

    const calls: Array<{ name: string; run: () => Promise<Reply> }> = [
      { name: 'gateway GET keys', run: () => call(gateway.url, 'GET', '/api/v1/keys') },
      { name: 'gateway GET key', run: () => call(gateway.url, 'GET', `/api/v1/keys/${member.id}`) },
      {
        name: 'gateway POST keys',
        run: () => call(gateway.url, 'POST', '/api/v1/keys', { name: 'during-outage' }),
      },
      {
        name: 'gateway POST revoke',
        run: () => call(gateway.url, 'POST', `/api/v1/keys/${member.id}/revoke`, {}),
      },
      { name: 'policy GET policies', run: () => call(policy.url, 'GET', '/api/v1/policies') },
      {
        name: 'policy POST policies',
        run: () => call(policy.url, 'POST', '/api/v1/policies', { source: POLICY('during-outage') }, ops.key),
      },
      { name: 'policy GET decisions', run: () => call(policy.url, 'GET', '/api/v1/decisions') },
      { name: 'audit GET entries', run: () => call(audit.url, 'GET', '/api/v1/audit/entries?limit=5') },
      { name: 'audit GET stats', run: () => call(audit.url, 'GET', '/api/v1/audit/stats') },
      { name: 'audit POST checkpoints', run: () => call(audit.url, 'POST', '/api/v1/audit/checkpoints') },
    ];

    await pg.stop();
    const during: string[] = [];
    for (const { name, run } of calls) {
      const reply = await run();
      during.push(`${name}: ${reply.status}`);
      expect({ name, status: reply.status, retryAfter: reply.retryAfter }).toEqual({
        name,
        status: 503,
        retryAfter: '2',
      });
      expect(reply.body).toMatchObject({
        error: {
          code: 'unavailable',
          type: 'api_error',
          message: expect.stringMatching(/^The database is unavailable \(.+\); the call can be retried/),
        },
      });
    }
    for (const method of ['queryEntries', 'issueCheckpoint']) {
      const error = await auditGrpcCall(method, { limit: 1 });
      during.push(`audit gRPC ${method}: ${error ? grpc.status[error.code] : 'OK'}`);
      expect({ method, code: error?.code }).toEqual({ method, code: grpc.status.UNAVAILABLE });
      expect(error?.details).toMatch(/database is unavailable/);
    }
    // No service went down with its database.
    for (const service of services) expect((await fetch(`${service.url}/healthz`)).status).toBe(200);

    await pg.start();
    const back = Date.now();
    await until(
      'every admin call to succeed again',
      async () => {
        const replies = await Promise.all(
          calls.filter((c) => !c.name.includes('POST')).map(({ run }) => run()),
        );
        return replies.every((r) => r.status === 200) ? true : undefined;
      },
      60_000,
    );
    const recoveredIn = (Date.now() - back) / 1000;
    expect(await auditGrpcCall('queryEntries', { limit: 1 })).toBeUndefined();

    // Nothing refused during the outage happened.
    const keys = await adminCall<{ data: Array<{ id: string; name: string; revokedAt?: string | null }> }>(
      gateway.url,
      ADMIN,
      'GET',
      '/api/v1/keys',
    );
    expect(keys.data.map((k) => k.name)).not.toContain('during-outage');
    expect(keys.data.find((k) => k.id === member.id)?.revokedAt ?? null).toBeNull();
    const policies = await adminCall<{ data: Array<{ name: string }> }>(
      policy.url,
      ADMIN,
      'GET',
      '/api/v1/policies',
    );
    expect(policies.data.map((p) => p.name)).toEqual(['kept']);
    console.log(
      `[faults] PostgreSQL down, admin APIs: ${during.join(', ')}; every read answered again ${recoveredIn.toFixed(1)} s after PostgreSQL was back; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }, 120_000);
});

import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall } from '../bench/processes.js';
import { blockJobPolicy } from './block-job-policy.js';
import { type DistributedRun, startDistributedRun } from './distributed-run.js';
import { CLI, type Service } from './services.js';
import { until } from './until.js';

// One URL for a distributed install: `flowloom serve gateway` forwards the policy and audit admin
// APIs to `flowloom serve policy` and `flowloom serve audit` (each a process of its own, on
// PostgreSQL and Kafka), so the CLI and auditors use the gateway's address alone, as with
// `flowloom up`. With the audit service stopped, the gateway says so instead of a bare 404.

const ADMIN = 'flk_faults-one-url-admin-0123456789abcdef';
const POLICY = blockJobPolicy('one-url-guard');

let run: DistributedRun | undefined;
let work = '';
let gateway: Service;
let policy: Service;
let audit: Service;

/** The CLI against the gateway's URL only. */
const cli = (...args: string[]) => cliAs(ADMIN, ...args);

async function cliAs(key: string, ...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'node',
      [CLI, ...args],
      {
        env: {
          ...process.env,
          FLOWLOOM_URL: gateway.url,
          FLOWLOOM_API_KEY: key,
          FLOWLOOM_DATA_DIR: join(work, 'cli'),
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) =>
        resolve({
          code: error ? Number((error as { code?: number }).code ?? 1) : 0,
          out: `${stdout}${stderr}`,
        }),
    );
  });
}

beforeAll(async () => {
  run = await startDistributedRun({
    name: 'one-url',
    admin: ADMIN,
    own: { gateway: { FLOWLOOM_PEER_TIMEOUT_MS: '5000' } },
  });
  ({ work, gateway, policy, audit } = run);
}, 180_000);

afterAll(() => run?.tearDown(), 60_000);

describe('the policy and audit admin APIs through the gateway URL', () => {
  it('when the audit public key is asked of the gateway, then it is the audit service’s own answer', async () => {
    const through = await fetch(`${gateway.url}/api/v1/audit/public-key`);
    expect(through.status).toBe(200);
    const direct = await (await fetch(`${audit.url}/api/v1/audit/public-key`)).text();
    expect(await through.text()).toBe(direct);
    expect(direct).toMatch(/\+/);
  });

  it('when the forwarded request carries a key, then the peer authenticates it: an admin key is served, a member key refused by the audit service', async () => {
    const member = await adminCall<{ key: string }>(gateway.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'agent',
    });
    const asAdmin = await fetch(`${gateway.url}/api/v1/audit/info`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(asAdmin.status).toBe(200);
    const asMember = await fetch(`${gateway.url}/api/v1/audit/info`, {
      headers: { 'x-api-key': member.key },
    });
    expect(asMember.status).toBe(403);
    const anonymous = await fetch(`${gateway.url}/api/v1/policies`);
    expect(anonymous.status).toBe(401);
  });

  it('when flowloom policy push and list use the gateway URL, then the policy service stores and lists the policy', async () => {
    const file = join(work, 'guard.yaml');
    writeFileSync(file, POLICY);
    // Policies are pushed with a personal admin key (the bootstrap key may not author them).
    const ops = await adminCall<{ key: string }>(gateway.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'ops',
      owner: 'ops',
      role: 'admin',
    });
    const pushed = await cliAs(ops.key, 'policy', 'push', file, '-m', 'through the gateway');
    expect(pushed.out).toContain('one-url-guard');
    expect(pushed.code).toBe(0);
    const listed = await cli('policy', 'list');
    expect(listed.code).toBe(0);
    expect(listed.out).toContain('one-url-guard');
    // The same policy, asked of the policy service directly.
    const direct = await adminCall<{ data: Array<{ name: string }> }>(
      policy.url,
      ADMIN,
      'GET',
      '/api/v1/policies',
    );
    expect(direct.data.map((p) => p.name)).toContain('one-url-guard');
  });

  it('when traffic reached the ledger, then flowloom audit verify and export against the gateway URL check it end to end, give a bundle that verifies offline, and flowloom report reads it', async () => {
    const chat = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(chat.status).toBe(200);
    await until(
      'the chat event in the ledger',
      async () => {
        const info = await adminCall<{ treeSize: number }>(gateway.url, ADMIN, 'GET', '/api/v1/audit/info');
        return info.treeSize >= 3 ? info : undefined;
      },
      60_000,
    );
    await adminCall(gateway.url, ADMIN, 'POST', '/api/v1/audit/checkpoints', {});
    const verified = await cli('audit', 'verify');
    expect(verified.out).not.toContain('404');
    expect(verified.code, verified.out).toBe(0);
    // An evidence bundle exported through the gateway verifies offline.
    const bundle = join(work, 'evidence');
    const exported = await cli('audit', 'export', '--out', bundle);
    expect(exported.code, exported.out).toBe(0);
    const offline = await cli('audit', 'verify', bundle);
    expect(offline.code, offline.out).toBe(0);
    const report = await cli('report', '--standard', 'sox', '--out', join(work, 'report'));
    expect(report.code, report.out).toBe(0);
    expect(existsSync(join(work, 'report', 'report.json'))).toBe(true);
  }, 90_000);

  it('when the gateway describes its API, then the forwarded policy and audit paths are in its document', async () => {
    const doc = (await (await fetch(`${gateway.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/v1/audit/public-key', '/api/v1/policies', '/api/v1/keys']),
    );
    expect(doc.paths['/api/v1/jobs/{job}/interventions']).toHaveProperty('get');
    expect(doc.paths['/api/v1/jobs/{job}/interventions']).toHaveProperty('post');
  });

  it('when the audit service is stopped, then the gateway answers 502 naming the audit service and what to check; once it is back, it is served again', async () => {
    await audit.stop();
    const res = await fetch(`${gateway.url}/api/v1/audit/public-key`);
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { message: string; code: string } };
    expect(body.error.code).toBe('upstream_error');
    expect(body.error.message).toContain('The audit service is not reachable');
    expect(body.error.message).toContain('FLOWLOOM_AUDIT_HTTP_URL');
    // The policy API and the gateway's own are unaffected.
    expect(
      (await fetch(`${gateway.url}/api/v1/policies`, { headers: { authorization: `Bearer ${ADMIN}` } }))
        .status,
    ).toBe(200);
    await audit.start();
    expect((await fetch(`${gateway.url}/api/v1/audit/public-key`)).status).toBe(200);
  }, 120_000);
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@flowloom/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPlatform, startEmbeddedPlatform } from '../src/commands/up.js';

// Job policies in `flowloom up` (embedded mode): a version pushed but not deployed, bound to one key,
// evaluated for that key's requests next to the active policy. It adds restrictions; it never lifts
// one of the active policy's.

const ADMIN = 'flk_up-job-policy-admin-0123456789abcdef';

const ACTIVE = `name: org
rules:
  - id: big-answers
    condition: request.max_tokens > 500
    action: block
    message: answers above 500 tokens are not allowed
`;

/** Tries to lift the active block (an allow at the highest priority), and adds a restriction. */
const JOB = `name: job-guard
rules:
  - id: let-everything-through
    priority: 1000
    condition: "true"
    action: allow
  - id: short-answers-only
    condition: request.max_tokens > 50
    action: block
    message: this job asks for short answers only
`;

let dir: string;
let platform: EmbeddedPlatform;
let url: string;
let jobVersion: string;

async function call(method: string, path: string, key: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
  };
}

const errorMessage = (body: Record<string, unknown>): string =>
  String((body.error as { message?: unknown } | undefined)?.message);

const ask = (key: string, maxTokens: number) =>
  call('POST', '/v1/chat/completions', key, {
    model: 'flowloom-local',
    max_tokens: maxTokens,
    messages: [{ role: 'user', content: 'hello' }],
  });

async function decision(id: string | null): Promise<Record<string, unknown>> {
  if (!id) throw new Error('no x-flowloom-decision header');
  for (let tries = 0; ; tries++) {
    await platform.gateway.flushOutbox();
    const found = await call('GET', `/api/v1/decisions/${id}`, ADMIN);
    if (found.status === 200) return found.body;
    if (tries > 100) throw new Error(`decision ${id} was never recorded`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-up-job-policy-'));
  writeFileSync(join(dir, 'policy.yaml'), ACTIVE);
  const env = {
    FLOWLOOM_DATA_DIR: dir,
    FLOWLOOM_HTTP_PORT: '0',
    FLOWLOOM_GRPC_PORT: '0',
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'silent',
    FLOWLOOM_POLICY_FILE: join(dir, 'policy.yaml'),
    FLOWLOOM_POLICY_MODE: 'enforce',
  };
  const config = loadConfig({ env, cwd: dir });
  platform = await startEmbeddedPlatform({ ...config, audit: { ...config.audit, grpcPort: 0 } }, env);
  url = platform.gateway.httpUrl;
  const pushed = await call('POST', '/api/v1/policies', ADMIN, {
    source: JOB,
    filename: 'job.yaml',
    message: 'job policy of a test',
    jobPolicy: true,
  });
  expect(pushed.status).toBe(201);
  jobVersion = String(pushed.body.version);
}, 120_000);

afterAll(async () => {
  await platform?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The data of the first audit entry of `type` that `match`es, waiting for the ledger to have it. */
async function auditEvent(
  type: string,
  match: (data: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown> | undefined> {
  type Entry = { event: { data: Record<string, unknown> } };
  for (let tries = 0; tries < 100; tries++) {
    const page = await call('GET', `/api/v1/audit/entries?type=${type}&limit=50`, ADMIN);
    const found = (page.body.data as Entry[] | undefined)?.find((e) => match(e.event.data));
    if (found) return found.event.data;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

describe('flowloom up: job policies', () => {
  it('when a key is bound to a job policy, then the key shows it and the job policy is not deployed', async () => {
    const created = await call('POST', '/api/v1/keys', ADMIN, {
      name: 'bound',
      policy: jobVersion.slice(0, 10),
    });
    expect(created.status).toBe(201);
    expect(created.body.policy).toBe(jobVersion);
    // The push is evidence too: the version event says it was pushed as a job policy (no approval).
    const pushedEvent = await auditEvent(
      'dev.flowloom.policy.version.pushed.v1',
      (d) => d['version'] === jobVersion,
    );
    expect(pushedEvent).toMatchObject({ jobPolicy: true, message: 'job policy of a test' });
    // And the key's own change event names the policy its requests answer to.
    const keyEvent = await auditEvent(
      'dev.flowloom.gateway.key.changed.v1',
      (d) => d['keyId'] === created.body.id,
    );
    expect(keyEvent).toMatchObject({ action: 'created', jobPolicy: jobVersion });
    const active = await call('GET', '/api/v1/gateway/policy', ADMIN);
    expect((active.body.policies as Array<{ name: string }>).map((p) => p.name)).toEqual(['org']);
  });

  it('when the job policy allows what the active policy blocks, then the active block wins and the record names both', async () => {
    const bound = await call('POST', '/api/v1/keys', ADMIN, { name: 'bound', policy: jobVersion });
    const refused = await ask(String(bound.body.key), 1000);
    expect(refused.status).toBe(403);
    expect(errorMessage(refused.body)).toContain('Refused by policy "org"');
    const record = await decision(refused.headers.get('x-flowloom-decision'));
    expect(record).toMatchObject({ verdict: 'block', policy: 'org', rule: 'big-answers' });
    const evaluations = record.evaluations as Array<Record<string, unknown>>;
    expect(evaluations).toEqual([
      expect.objectContaining({ policy: 'org', matched: ['big-answers'] }),
      expect.objectContaining({
        policy: 'job-guard',
        version: jobVersion,
        jobPolicy: true,
        matched: ['let-everything-through', 'short-answers-only'],
      }),
    ]);
    expect((evaluations[0] as { jobPolicy?: boolean }).jobPolicy).toBeUndefined();
  });

  it('when the job policy blocks what the active one allows, then only the bound key is refused, by the job policy', async () => {
    const bound = await call('POST', '/api/v1/keys', ADMIN, { name: 'bound', policy: jobVersion });
    const free = await call('POST', '/api/v1/keys', ADMIN, { name: 'free' });
    expect((await ask(String(free.body.key), 100)).status).toBe(200);
    expect((await ask(String(bound.body.key), 20)).status).toBe(200);
    const refused = await ask(String(bound.body.key), 100);
    expect(refused.status).toBe(403);
    const message = errorMessage(refused.body);
    expect(message).toContain(`Refused by job policy "job-guard" (version ${jobVersion.slice(0, 12)}`);
    expect(message).toContain('this job asks for short answers only');
    const record = await decision(refused.headers.get('x-flowloom-decision'));
    expect(record).toMatchObject({
      verdict: 'block',
      policy: 'job-guard',
      version: jobVersion,
      rule: 'short-answers-only',
    });
    expect((record.explanation as string[])[0]).toContain('[enforce, job policy]');
  });

  it('when the version is unknown or reroutes, then no key is issued and the answer says why', async () => {
    const unknown = await call('POST', '/api/v1/keys', ADMIN, { name: 'x', policy: 'abcdef0123' });
    expect(unknown.status).toBe(404);
    expect(JSON.stringify(unknown.body)).toContain('No policy has a version abcdef0123');
    const source =
      'name: sneaky\nrules:\n  - id: swap\n    condition: "true"\n    action: { type: reroute, model: other }\n';
    // Pushed as a job policy, it is refused at once, pointing at the action.
    const asJob = await call('POST', '/api/v1/policies', ADMIN, {
      source,
      filename: 'sneaky.yaml',
      jobPolicy: true,
    });
    expect(asJob.status).toBe(400);
    expect(JSON.stringify(asJob.body)).toContain('sneaky.yaml:5');
    // Pushed as an ordinary version (by a personal admin key), it cannot be bound to a key either.
    const alice = await call('POST', '/api/v1/keys', ADMIN, { name: 'alice', owner: 'alice', role: 'admin' });
    const reroute = await call('POST', '/api/v1/policies', String(alice.body.key), {
      source,
      message: 'a reroute',
    });
    expect(reroute.status).toBe(201);
    const refused = await call('POST', '/api/v1/keys', ADMIN, {
      name: 'x',
      policy: String(reroute.body.version),
    });
    expect(refused.status).toBe(400);
    const text = JSON.stringify(refused.body);
    expect(text).toContain('cannot be a job policy');
    expect(text).toContain('rules[0].action');
    const keys = await call('GET', '/api/v1/keys', ADMIN);
    expect((keys.body.data as Array<{ name: string }>).some((k) => k.name === 'x')).toBe(false);
  });
});

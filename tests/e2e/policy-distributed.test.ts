import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { InProcessBus } from '@flowloom/bus';
import { loadConfig } from '@flowloom/config';
import { adminAuthorizerFor, type Gateway, startGateway } from '@flowloom/gateway';
import { type PolicyService, startPolicyHttp, startPolicyService } from '@flowloom/policy';
import { type Db, openPostgres } from '@flowloom/store';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delay } from './helpers.js';
import { openScratchSchema, type ScratchSchema } from './pg-schema.js';

// Distributed mode in one test process: a policy service streaming bundles over gRPC, and a gateway
// that knows it only by address (policy.serviceUrl). Both share PostgreSQL and a bus (Kafka in
// production). Callers use the official SDKs and a real gRPC client.

const ADMIN = 'flk_e2e-policy-admin-0123456789abcdefghij';
const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));

const GUARD = (threshold: number) => `name: runaway-guard
description: stop agents that loop
rules:
  - id: agent-loop
    condition: signals.repeated_prompts >= ${threshold}
    action: stop_job
    message: the agent kept sending the same prompt
  - id: no-secrets
    condition: request.job.startsWith("pii-")
    action: { type: redact, patterns: [email, api_key] }
`;

let pg: ScratchSchema | undefined;
let db: Db;
let bus: InProcessBus;
let dir: string;
let policy: PolicyService;
let gateway: Gateway;
let policyHttp: Awaited<ReturnType<typeof startPolicyHttp>>;
let policyUrl: string;
let memberKey: string;
let reviewerKey: string;
let authorKey: string;

async function api(base: string, method: string, path: string, key: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: res.headers,
  };
}

beforeAll(async () => {
  pg = await openScratchSchema('e2e_policy');
  const url = pg.url;
  db = await openPostgres(url, { max: 6 });
  bus = new InProcessBus();
  dir = mkdtempSync(join(tmpdir(), 'flowloom-e2e-policy-'));
  const config = loadConfig({
    env: {},
    cwd: dir,
    overrides: { httpPort: 0, grpcPort: 0, logLevel: 'silent', dataDir: dir, adminKey: ADMIN },
  });
  // Gateways authenticate to the bundle stream with an admin key from the shared key table.
  policy = await startPolicyService({
    config,
    db,
    bus,
    grpcPort: 0,
    authorizeGateway: adminAuthorizerFor(db),
  });
  gateway = await startGateway({
    config: { ...config, policy: { ...config.policy, serviceUrl: policy.grpcAddress! } },
    env: {},
    db,
    bus,
  });
  // The policy service's admin API on a server of its own, authorizing with the gateway's keys.
  policyHttp = await startPolicyHttp(policy.http, gateway.authorizeAdmin, '127.0.0.1', 0);
  policyUrl = policyHttp.url;

  memberKey = String((await api(gateway.httpUrl, 'POST', '/api/v1/keys', ADMIN, { name: 'agent' })).body.key);
  // Personal admin keys from the bootstrap key: policies are pushed by one and approved by the other.
  const personal = async (owner: string) =>
    String(
      (await api(gateway.httpUrl, 'POST', '/api/v1/keys', ADMIN, { name: owner, owner, role: 'admin' })).body
        .key,
    );
  // The gateway's stream is refused until its bootstrap admin key is stored (it starts after the
  // policy service) and then retries after a back-off: time propagation only once it is connected.
  for (let tries = 0; ; tries++) {
    const ready = await api(gateway.httpUrl, 'GET', '/readyz', ADMIN);
    const checks = (ready.body as { checks?: Record<string, string> }).checks ?? {};
    if (checks['policy'] === 'ok') break;
    if (tries > 200)
      throw new Error(`the gateway's policy stream never connected: ${JSON.stringify(checks)}`);
    await delay(25);
  }
  authorKey = await personal('alice');
  reviewerKey = await personal('reviewer');
});

afterAll(async () => {
  await gateway?.close();
  await policyHttp?.close();
  await policy?.close();
  await bus?.close();
  await db?.close();
  await pg?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function activeOnGateway(): Promise<{ revision: number; policies: Array<{ stable?: string }> }> {
  return (await api(gateway.httpUrl, 'GET', '/api/v1/gateway/policy', ADMIN)).body as {
    revision: number;
    policies: Array<{ stable?: string }>;
  };
}

async function pushAndEnforce(source: string): Promise<{ version: string; ms: number }> {
  const pushed = await api(policyUrl, 'POST', '/api/v1/policies', authorKey, { source, message: 'e2e' });
  expect([200, 201]).toContain(pushed.status);
  const version = String(pushed.body.version);
  const requested = await api(policyUrl, 'POST', '/api/v1/policies/runaway-guard/promotions', ADMIN, {
    version,
    mode: 'enforce',
  });
  expect(requested.status).toBe(202);
  const id = (requested.body.promotion as { id: string }).id;
  expect((await api(policyUrl, 'POST', `/api/v1/promotions/${id}/approve`, authorKey)).status).toBe(403);
  expect((await api(policyUrl, 'POST', `/api/v1/promotions/${id}/approve`, ADMIN)).status).toBe(403);
  const approved = await api(policyUrl, 'POST', `/api/v1/promotions/${id}/approve`, reviewerKey);
  expect(approved.status).toBe(200);
  // From the moment the approval is answered (the version is active): what the gateway takes to get it.
  const started = Date.now();
  for (;;) {
    if ((await activeOnGateway()).policies[0]?.stable === version)
      return { version, ms: Date.now() - started };
    if (Date.now() - started > 3_000) throw new Error('the gateway never received the new version');
    await delay(20);
  }
}

/** A real gRPC client of a service in proto/flowloom, e.g. ('gateway/v1/gateway.proto', 'flowloom.gateway.v1.Gateway'). */
function grpcClient<T>(file: string, service: string, address: string): grpc.Client & T {
  const definition = protoLoader.loadSync(`${PROTO_ROOT}/flowloom/${file}`, {
    keepCase: false,
    longs: Number,
    defaults: true,
    includeDirs: [PROTO_ROOT],
  });
  let node: unknown = grpc.loadPackageDefinition(definition);
  for (const part of service.split('.')) node = (node as Record<string, unknown>)[part];
  const Client = node as grpc.ServiceClientConstructor;
  return new Client(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & T;
}

function distributionClient() {
  return grpcClient<{
    watchBundle(
      request: { knownRevision: number; gateway: string },
      metadata: grpc.Metadata,
    ): grpc.ClientReadableStream<{ revision: number }>;
  }>('policy/v1/policy.proto', 'flowloom.policy.v1.PolicyDistribution', policy.grpcAddress!);
}

describe('policies across services', () => {
  let v1: string;

  it('when a version is approved on the policy service, then the gateway streaming its bundles enforces it within a second', async () => {
    const first = await pushAndEnforce(GUARD(4));
    v1 = first.version;
    expect(first.ms).toBeLessThan(1_000);
  });

  it('when an OpenAI SDK agent loops, then it is stopped within 3 requests, reads why, and the decision is on the policy service', async () => {
    const client = new OpenAI({ apiKey: memberKey, baseURL: `${gateway.httpUrl}/v1`, maxRetries: 0 });
    const job = `agent-${randomBytes(3).toString('hex')}`;
    let refusal: InstanceType<typeof OpenAI.APIError> | undefined;
    let sent = 0;
    for (; sent < 10 && !refusal; sent++) {
      try {
        await client.chat.completions.create(
          {
            model: 'flowloom-local',
            messages: [{ role: 'user', content: 'check the build status once more' }],
          },
          { headers: { 'x-flowloom-job': job } },
        );
      } catch (error) {
        refusal = error as InstanceType<typeof OpenAI.APIError>;
      }
    }
    // The 5th identical prompt is the first with 4 earlier repeats.
    expect(sent - 5).toBeLessThanOrEqual(3);
    expect(refusal?.status).toBe(403);
    expect(refusal?.message).toContain(`rule "agent-loop"`);
    expect(refusal?.message).toContain(`version ${v1.slice(0, 12)}`);
    const decisionId = refusal?.headers?.get('x-flowloom-decision');
    expect(decisionId).toBeTruthy();

    await gateway.flushOutbox();
    const decision = await api(policyUrl, 'GET', `/api/v1/decisions/${decisionId}`, ADMIN);
    expect(decision.status).toBe(200);
    expect(decision.body).toMatchObject({
      verdict: 'stop_job',
      policy: 'runaway-guard',
      version: v1,
      rule: 'agent-loop',
    });
    const rules = (
      decision.body.evaluations as Array<{
        rules: Array<{ id: string; matched: boolean; inputs: Record<string, number> }>;
      }>
    )[0]!.rules;
    expect(rules.find((r) => r.id === 'agent-loop')).toMatchObject({ matched: true });
    expect(
      rules.find((r) => r.id === 'agent-loop')!.inputs['signals.repeated_prompts'],
    ).toBeGreaterThanOrEqual(4);

    const status = await api(gateway.httpUrl, 'GET', `/api/v1/jobs/${job}`, ADMIN);
    expect(status.body).toMatchObject({ status: 'stopped', stoppedBy: { decisionId } });
    const found = await api(policyUrl, 'GET', `/api/v1/jobs/${job}/interventions`, ADMIN);
    expect((found.body.data as Array<{ action: string }>).map((i) => i.action)).toContain('stop_job');
  });

  it('when an Anthropic SDK caller and a gRPC caller are refused, then each reads the reason in its own format', async () => {
    const job = `agent-${randomBytes(3).toString('hex')}`;
    await api(gateway.httpUrl, 'POST', `/api/v1/jobs/${job}/stop`, ADMIN, { reason: 'paused for review' });
    const anthropic = new Anthropic({ apiKey: memberKey, baseURL: gateway.httpUrl, maxRetries: 0 });
    const error = await anthropic.messages
      .create(
        { model: 'flowloom-local', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'x-flowloom-job': job } },
      )
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof Anthropic.APIError>,
      );
    expect(error?.status).toBe(403);
    expect(JSON.stringify(error?.error)).toContain('permission_error');
    expect(error?.message).toContain('paused for review');

    const client = grpcClient<{
      chat(
        request: Record<string, unknown>,
        metadata: grpc.Metadata,
        callback: (error: grpc.ServiceError | null) => void,
      ): void;
    }>('gateway/v1/gateway.proto', 'flowloom.gateway.v1.Gateway', gateway.grpcAddress);
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${memberKey}`);
    const status = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.chat(
        { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }], job },
        metadata,
        (e) => resolve(e),
      ),
    );
    client.close();
    expect(status?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(status?.details).toContain('paused for review');
  });

  it('when redaction applies, then the provider sees masks and the decision records how many', async () => {
    const client = new OpenAI({ apiKey: memberKey, baseURL: `${gateway.httpUrl}/v1`, maxRetries: 0 });
    const { data, response } = await client.chat.completions
      .create(
        {
          model: 'flowloom-local',
          messages: [{ role: 'user', content: 'mail ops@example.com with sk-abcdefghijklmnopqrstuvwx12' }],
        },
        { headers: { 'x-flowloom-job': 'pii-export' } },
      )
      .withResponse();
    expect(data.choices[0]?.message.content).not.toContain('ops@example.com');
    await gateway.flushOutbox();
    const decision = await api(
      policyUrl,
      'GET',
      `/api/v1/decisions/${response.headers.get('x-flowloom-decision')}`,
      ADMIN,
    );
    expect(decision.body).toMatchObject({ redactions: 2, actions: [{ ruleId: 'no-secrets' }] });
  });

  it('when a stricter candidate is replayed against the recorded traffic, then the changes are counted', async () => {
    const pushed = await api(policyUrl, 'POST', '/api/v1/policies', authorKey, {
      source: GUARD(2),
      message: 'stricter',
    });
    const replay = await api(policyUrl, 'POST', '/api/v1/policies/runaway-guard/replay', ADMIN, {
      version: String(pushed.body.version),
      since: '1h',
    });
    expect(replay.status).toBe(200);
    const report = replay.body.report as {
      total: number;
      changed: number;
      transitions: Array<{ from: string; to: string }>;
    };
    expect(report.total).toBeGreaterThan(5);
    expect(report.changed).toBeGreaterThan(0);
    expect(report.transitions.some((t) => t.from === 'allow' && t.to === 'stop_job')).toBe(true);
  });

  it('when a key is bound to a job policy that is pushed but not deployed, then the gateway fetches it over gRPC, enforces it for that key only, and it cannot lift the active stop', async () => {
    const pushed = await api(policyUrl, 'POST', '/api/v1/policies', authorKey, {
      source: `name: job-guard
rules:
  - id: lift-everything
    priority: 1000
    condition: "true"
    action: allow
  - id: short-answers
    condition: request.max_tokens > 20
    action: block
    message: this job asks for short answers
`,
      message: 'a job policy',
      jobPolicy: true,
    });
    expect(pushed.status).toBe(201);
    const version = String(pushed.body.version);
    const created = await api(gateway.httpUrl, 'POST', '/api/v1/keys', ADMIN, {
      name: 'bound',
      policy: version.slice(0, 9),
    });
    expect(created.status).toBe(201);
    expect(created.body.policy).toBe(version);
    expect((await activeOnGateway()).policies.map((p) => (p as { name?: string }).name)).toEqual([
      'runaway-guard',
    ]);
    const ask = (key: string, maxTokens: number, job: string) =>
      new OpenAI({ apiKey: key, baseURL: `${gateway.httpUrl}/v1`, maxRetries: 0 }).chat.completions.create(
        {
          model: 'flowloom-local',
          max_tokens: maxTokens,
          messages: [{ role: 'user', content: 'same again' }],
        },
        { headers: { 'x-flowloom-job': job } },
      );
    const bound = String(created.body.key);
    await expect(ask(memberKey, 50, `free-${randomBytes(3).toString('hex')}`)).resolves.toBeTruthy();
    const refused = await ask(bound, 50, `bound-${randomBytes(3).toString('hex')}`).catch(
      (error: InstanceType<typeof OpenAI.APIError>) => error,
    );
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(403);
    expect((refused as Error).message).toContain(
      `Refused by job policy "job-guard" (version ${version.slice(0, 12)}`,
    );

    // The job policy's allow at the highest priority does not lift the active loop stop.
    const job = `bound-${randomBytes(3).toString('hex')}`;
    let stop: InstanceType<typeof OpenAI.APIError> | undefined;
    for (let sent = 0; sent < 10 && !stop; sent++)
      await ask(bound, 10, job).catch((error: InstanceType<typeof OpenAI.APIError>) => {
        stop = error;
      });
    expect(stop?.status).toBe(403);
    expect(stop?.message).toContain('Refused by policy "runaway-guard"');
    expect(stop?.message).toContain('rule "agent-loop"');

    const unknown = await api(gateway.httpUrl, 'POST', '/api/v1/keys', ADMIN, {
      name: 'x',
      policy: 'fedcba98765',
    });
    expect(unknown.status).toBe(404);
  });
});

describe('the bundle stream is for gateways only', () => {
  it('when a client without a key, with a member key or with an admin key opens the stream, then it is refused UNAUTHENTICATED, PERMISSION_DENIED, or served', async () => {
    const client = distributionClient();
    const open = (key?: string) => {
      const metadata = new grpc.Metadata();
      if (key) metadata.set('authorization', `Bearer ${key}`);
      const stream = client.watchBundle({ knownRevision: -1, gateway: 'e2e' }, metadata);
      return new Promise<{ revision?: number; error?: grpc.ServiceError }>((resolve) => {
        stream.once('data', (bundle: { revision: number }) => {
          stream.cancel();
          resolve({ revision: bundle.revision });
        });
        stream.once('error', (error: grpc.ServiceError) => resolve({ error }));
      });
    };
    const anonymous = await open();
    expect(anonymous.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(anonymous.error?.details).toContain("the gateway's service credential");
    expect((await open('flk_not-a-real-key-0000000000000000')).error?.code).toBe(grpc.status.UNAUTHENTICATED);
    const member = await open(memberKey);
    expect(member.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(member.error?.details).toContain('needs an admin key');
    expect((await open(reviewerKey)).revision).toEqual(expect.any(Number));
    client.close();
  });

  it('when a gateway presents a key without the admin role, then it starts at once without policies', async () => {
    const started = Date.now();
    const config = loadConfig({
      env: {},
      cwd: dir,
      overrides: { httpPort: 0, grpcPort: 0, logLevel: 'silent', dataDir: join(dir, 'second') },
    });
    const refused = await startGateway({
      config: {
        ...config,
        policy: { ...config.policy, serviceUrl: policy.grpcAddress!, serviceKey: memberKey },
      },
      env: {},
      db,
      bus,
    });
    try {
      // It does not wait out the 5 s for a first bundle: a refused credential will not fix itself.
      expect(Date.now() - started).toBeLessThan(4_000);
      // The gateway with the admin key enforces runaway-guard (the tests above); this one has nothing.
      expect((await activeOnGateway()).policies).not.toEqual([]);
      const active = await api(refused.httpUrl, 'GET', '/api/v1/gateway/policy', ADMIN);
      expect(active.body.policies).toEqual([]);
    } finally {
      await refused.close();
    }
  });

  it('when a gateway has the policy service address but no key at all, then it refuses to start and names the setting', async () => {
    const config = loadConfig({
      env: {},
      cwd: dir,
      overrides: { logLevel: 'silent', dataDir: join(dir, 'third') },
    });
    await expect(
      startGateway({
        config: { ...config, policy: { ...config.policy, serviceUrl: policy.grpcAddress! } },
        env: {},
      }),
    ).rejects.toThrow(/Fix: set FLOWLOOM_POLICY_SERVICE_KEY \(or FLOWLOOM_ADMIN_KEY\)/);
  });
});

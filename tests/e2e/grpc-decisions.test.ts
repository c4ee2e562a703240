import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type GatewayChatChunk as ChatChunk,
  type GatewayChatResponse as ChatResponse,
  type GatewayClient,
  gatewayClient,
} from '@flowloom/gateway/testing/grpc';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EmbeddedPlatform,
  enforceApproved,
  killUp,
  pushInShadow,
  startEmbeddedPlatform,
} from './cli-support.js';

// A gRPC caller finds the policy decision on its request as an HTTP caller does (x-flowloom-decision):
// in the answer, in initial metadata, and in the trailers of a refusal; GET /api/v1/decisions/{id}
// of `flowloom up` then finds the record. A real grpc-js client against an embedded `flowloom up`.

const ADMIN = 'flk_e2e-grpc-decisions-admin-0123456789ab';
const POLICY = `name: grpc-guard
rules:
  - id: no-blocked-job
    condition: request.job == "blocked-job"
    action: block
    message: this job is paused
`;

interface Outcome<T> {
  response?: T;
  error?: grpc.ServiceError;
  /** Initial metadata. */
  headers?: grpc.Metadata;
}
let dir: string;
let platform: EmbeddedPlatform | undefined;
let client: GatewayClient;
let version: string;

const auth = (): grpc.Metadata => {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${platform?.memberKey}`);
  return metadata;
};
const ask = (job: string) => ({
  model: 'flowloom-local',
  messages: [{ role: 'user', content: 'hello' }],
  job,
});
const soon = (): grpc.CallOptions => ({ deadline: Date.now() + 10_000 });

function chat(job: string): Promise<Outcome<ChatResponse>> {
  return new Promise((resolve) => {
    const outcome: Outcome<ChatResponse> = {};
    const call = client.chat(ask(job), auth(), soon(), (error, response) => {
      resolve(error ? { ...outcome, error } : { ...outcome, ...(response ? { response } : {}) });
    });
    call.on('metadata', (headers: grpc.Metadata) => {
      outcome.headers = headers;
    });
  });
}

function chatStream(job: string): Promise<Outcome<ChatChunk[]>> {
  return new Promise((resolve) => {
    const chunks: ChatChunk[] = [];
    let headers: grpc.Metadata | undefined;
    const call = client.chatStream(ask(job), auth(), soon());
    call.on('metadata', (m: grpc.Metadata) => {
      headers = m;
    });
    call.on('data', (chunk: ChatChunk) => chunks.push(chunk));
    call.on('error', (error: grpc.ServiceError) => resolve({ response: chunks, error }));
    call.on('end', () => resolve({ response: chunks, ...(headers ? { headers } : {}) }));
  });
}

const one = (metadata: grpc.Metadata | undefined, name: string): string | undefined => {
  const value = metadata?.get(name)[0];
  return value === undefined ? undefined : String(value);
};

async function decision(id: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${platform?.base}/api/v1/decisions/${id}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The decision record, once the policy service has consumed it from the bus. */
async function recorded(id: string): Promise<Record<string, unknown>> {
  const until = Date.now() + 15_000;
  for (;;) {
    const found = await decision(id);
    if (found.status === 200) return found.body;
    if (Date.now() > until) throw new Error(`decision ${id} not found: ${found.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-e2e-grpc-decisions-'));
  writeFileSync(join(dir, 'guard.yaml'), POLICY);
  platform = await startEmbeddedPlatform(join(dir, 'data'), ADMIN, 'grpc-agent');
  client = gatewayClient(platform.grpcAddress);

  version = await pushInShadow(join(dir, 'guard.yaml'), 'grpc-guard', 'pause a job', platform.env);
}, 120_000);

afterAll(async () => {
  client?.close();
  await killUp(platform?.up);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('policy decisions over gRPC (embedded flowloom up)', () => {
  it('when a shadowed policy would block a unary Chat, then the answer and its initial metadata carry the request and decision ids, and GET /api/v1/decisions/{id} finds the decision', async () => {
    // The version reaches the gateway's bundle within a second of the promotion.
    let outcome = await chat('blocked-job');
    const until = Date.now() + 10_000;
    while (!outcome.response?.decisionId && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      outcome = await chat('blocked-job');
    }
    expect(outcome.error).toBeUndefined();
    const response = outcome.response!;
    expect(response.content).not.toBe('');
    expect(response.decisionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(one(outcome.headers, 'x-flowloom-decision')).toBe(response.decisionId);
    expect(one(outcome.headers, 'x-request-id')).toBe(response.requestId);
    expect(one(outcome.headers, 'x-flowloom-deployment')).toBe(response.deployment);
    expect(one(outcome.headers, 'x-flowloom-attempts')).toBe(String(response.attempts));

    const record = await recorded(response.decisionId);
    expect(record).toMatchObject({
      decisionId: response.decisionId,
      requestId: response.requestId,
      verdict: 'allow',
      intendedVerdict: 'block',
      mode: 'shadow',
    });
  });

  it('when a shadowed policy reads a ChatStream, then the started chunk and initial metadata carry the decision id', async () => {
    const outcome = await chatStream('blocked-job');
    expect(outcome.error).toBeUndefined();
    const started = outcome.response?.find((c) => c.started)?.started;
    expect(started?.decisionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(one(outcome.headers, 'x-flowloom-decision')).toBe(started?.decisionId);
    expect(one(outcome.headers, 'x-request-id')).toBe(started?.requestId);
    expect(one(outcome.headers, 'x-flowloom-deployment')).toBe(started?.deployment);
    expect(await recorded(started!.decisionId)).toMatchObject({
      requestId: started?.requestId,
      mode: 'shadow',
    });
  });

  it('when the enforced policy blocks Chat and ChatStream, then the refusal trailers carry the decision id that GET /api/v1/decisions/{id} finds', async () => {
    await enforceApproved('grpc-guard', version, platform!.env, platform!.reviewerEnv);

    let outcome = await chat('blocked-job');
    const until = Date.now() + 10_000;
    while (!outcome.error && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      outcome = await chat('blocked-job');
    }
    const refused = outcome.error!;
    expect(refused.code).toBe(grpc.status.PERMISSION_DENIED);
    const decisionId = one(refused.metadata, 'x-flowloom-decision');
    expect(decisionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(refused.details).toContain(decisionId);
    const requestId = one(refused.metadata, 'x-request-id');
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await recorded(decisionId!)).toMatchObject({
      decisionId,
      requestId,
      verdict: 'block',
      mode: 'enforce',
    });

    const streamed = await chatStream('blocked-job');
    expect(streamed.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    const streamDecision = one(streamed.error?.metadata, 'x-flowloom-decision');
    expect(streamDecision).toMatch(/^[0-9a-f-]{36}$/);
    expect(streamDecision).not.toBe(decisionId);
    expect(await recorded(streamDecision!)).toMatchObject({ verdict: 'block' });

    // A request no rule blocks is answered, still with its decision.
    const allowed = await chat('other-job');
    expect(allowed.error).toBeUndefined();
    expect(one(allowed.headers, 'x-flowloom-decision')).toBe(allowed.response?.decisionId);
  });
});

import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import {
  type GatewayChatChunk,
  type GatewayChatResponse,
  type GatewayClient,
  gatewayClient,
} from './grpc-client.js';
import { decisionOf, type PolicyGateway, startPolicyGateway, testPostgres } from './policy-helpers.js';

// A gRPC Chat or ChatStream call gives policies what an HTTP request does: its metadata as
// `request.headers` (lower-case names, binary `-bin` entries and credentials left out) and the job,
// session and project tags, from the request's fields or the `x-flowloom-*` metadata. A real grpc-js
// client against a gateway enforcing a policy file.

const POLICY = `name: grpc-facts
rules:
  - id: gold-nightly
    condition: '"x-tier" in request.headers && request.headers["x-tier"] == "gold" && request.job == "nightly"'
    action: block
    message: gold-tier nightly jobs are paused
  - id: sees-secrets
    condition: >-
      "authorization" in request.headers || "x-api-key" in request.headers
      || "x-session-token" in request.headers || "x-trace-bin" in request.headers
    action: block
    message: a credential reached the policy
  - id: metadata-present
    condition: size(request.headers) > 0
    action: alert
  - id: tagged
    condition: request.session == "s-1" && request.project == "p-1" && request.headers["x-tier"] == "silver"
    action: alert
`;

let pg: TestDatabase;
let t: PolicyGateway;
let client: GatewayClient;
let key: string;

beforeAll(async () => {
  pg = await testPostgres();
  t = await startPolicyGateway(POLICY, { db: pg.db });
  key = (await t.createKey({ name: 'grpc-facts' })).key;
  client = gatewayClient(t.gateway.grpcAddress);
});
afterAll(async () => {
  client?.close();
  await t?.close();
  await pg?.drop();
});

/** Metadata with the key, the given text entries, a secret-looking one and a binary one. */
function metadata(entries: Record<string, string>, secret = key): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${secret}`);
  m.set('x-api-key', secret);
  m.set('x-session-token', 'tok-very-secret');
  m.set('x-trace-bin', Buffer.from([0, 1, 2, 255]));
  for (const [name, value] of Object.entries(entries)) m.add(name, value);
  return m;
}

const ask = (tags: Record<string, string> = {}) => ({
  model: 'flowloom-local',
  messages: [{ role: 'user', content: 'hello over gRPC' }],
  ...tags,
});

function chat(
  entries: Record<string, string>,
  tags: Record<string, string> = {},
  secret = key,
): Promise<{ response?: GatewayChatResponse; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    client.chat(ask(tags), metadata(entries, secret), { deadline: Date.now() + 10_000 }, (error, response) =>
      resolve(error ? { error } : { ...(response ? { response } : {}) }),
    );
  });
}

function chatStream(
  entries: Record<string, string>,
  tags: Record<string, string> = {},
): Promise<{ chunks: GatewayChatChunk[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const chunks: GatewayChatChunk[] = [];
    const call = client.chatStream(ask(tags), metadata(entries), { deadline: Date.now() + 10_000 });
    call.on('data', (chunk: GatewayChatChunk) => chunks.push(chunk));
    call.on('error', (error: grpc.ServiceError) => resolve({ chunks, error }));
    call.on('end', () => resolve({ chunks }));
  });
}

async function evaluation(decisionId: string | undefined) {
  const decision = await decisionOf(t, decisionId ?? null);
  const [first] = decision.evaluations as Array<{ matched: string[]; inputs: Record<string, unknown> }>;
  return { decision, evaluation: first! };
}

describe('what a gRPC call gives policies', () => {
  it('when a unary Chat carries x-tier metadata and the x-flowloom-job metadata, then a rule reading both blocks it, and the decision shows the values it read without a credential or binary entry', async () => {
    // Metadata names are case-insensitive: grpc-js sends them lower-case.
    const { error } = await chat({ 'X-Tier': 'gold', 'x-flowloom-job': 'nightly' });
    expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(error?.details).toContain('gold-tier nightly jobs are paused');
    const decisionId = String(error?.metadata.get('x-flowloom-decision')[0]);
    const { decision, evaluation: e } = await evaluation(decisionId);
    expect(e.matched).toEqual(['gold-nightly', 'metadata-present']);
    expect(e.inputs['request.headers["x-tier"]']).toBe('gold');
    expect(e.inputs['request.job']).toBe('nightly');
    for (const hidden of ['authorization', 'x-api-key', 'x-session-token', 'x-trace-bin'])
      expect(e.inputs[`request.headers["${hidden}"]`]).toBeNull();
    const names = e.inputs['request.headers'] as string[];
    expect(names).toEqual(expect.arrayContaining(['x-tier', 'x-flowloom-job', 'user-agent']));
    for (const hidden of ['authorization', 'x-api-key', 'x-session-token', 'x-trace-bin'])
      expect(names).not.toContain(hidden);
    const recorded = JSON.stringify(decision);
    expect(recorded).not.toContain(key);
    expect(recorded).not.toContain('tok-very-secret');
  });

  it('when another tier or another job calls, then it is answered; the job tag from the request field reads the same', async () => {
    const silver = await chat({ 'x-tier': 'silver', 'x-flowloom-job': 'nightly' });
    expect(silver.error).toBeUndefined();
    expect(silver.response?.content).not.toBe('');
    const daily = await chat({ 'x-tier': 'gold', 'x-flowloom-job': 'daily' });
    expect(daily.error).toBeUndefined();
    const byField = await chat({ 'x-tier': 'gold' }, { job: 'nightly' });
    expect(byField.error?.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('when a ChatStream carries the same metadata, then the same rule blocks it, and session and project tags reach the policy from metadata', async () => {
    const blocked = await chatStream({ 'x-tier': 'gold', 'x-flowloom-job': 'nightly' });
    expect(blocked.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(blocked.error?.details).toContain('gold-tier nightly jobs are paused');

    const tagged = await chatStream({
      'x-tier': 'silver',
      'x-flowloom-session': 's-1',
      'x-flowloom-project': 'p-1',
    });
    expect(tagged.error).toBeUndefined();
    expect(tagged.chunks.some((c) => c.textDelta)).toBe(true);
    const decisionId = tagged.chunks.find((c) => c.started)?.started?.decisionId;
    const { evaluation: e } = await evaluation(decisionId);
    expect(e.matched).toEqual(['metadata-present', 'tagged']);
    expect(e.inputs).toMatchObject({ 'request.session': 's-1', 'request.project': 'p-1' });
  });

  it('when tags are malformed, disagree between field and metadata, or name a project the key is not of, then the call is refused before a policy or model sees it', async () => {
    const spaced = await chat({ 'x-flowloom-job': 'has space' });
    expect(spaced.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(spaced.error?.details).toContain('x-flowloom-job must be 1-200 printable ASCII characters');

    const disagree = await chat({ 'x-flowloom-job': 'nightly' }, { job: 'daily' });
    expect(disagree.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(disagree.error?.details).toContain(
      "job field ('daily') and its x-flowloom-job metadata ('nightly')",
    );

    const projectKey = (await t.createKey({ name: 'grpc-project', project: 'p-1' })).key;
    const other = await chat({ 'x-flowloom-project': 'p-2' }, {}, projectKey);
    expect(other.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(other.error?.details).toContain("This key belongs to project 'p-1'");
    const own = await chat({ 'x-tier': 'silver' }, { project: 'p-1' }, projectKey);
    expect(own.error).toBeUndefined();
  });
});

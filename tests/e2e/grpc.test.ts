import { fileURLToPath } from 'node:url';
import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from '../fakes/index.js';
import { bodyOf, COMPLETED, eventFor, lastCall, modelCalls } from './helpers.js';

const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
// The options the gateway loads its own contract with (services/gateway/src/grpc/load.ts).
const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}
interface Usage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
}
interface ChatRequest {
  model: string;
  messages: Array<{ role: string; content: string; toolCalls?: ToolCall[]; toolCallId?: string }>;
  maxTokens?: number;
  temperature?: number;
  tools?: Array<{ name: string; description: string; parametersJson: string }>;
  toolChoice?: string;
  responseFormat?: string;
  job?: string;
  session?: string;
  project?: string;
}
interface ChatResponse {
  id: string;
  model: string;
  content: string;
  toolCalls: ToolCall[];
  finishReason: string;
  usage: Usage;
  deployment: string;
  attempts: number;
  requestId: string;
  costUsd: number;
}
interface ChatChunk {
  kind: 'started' | 'textDelta' | 'toolCall' | 'finishReason' | 'usage';
  started?: { id: string; model: string; deployment: string; attempts: number; requestId: string };
  textDelta?: string;
  toolCall?: { index: number; id: string; name: string; argumentsDelta: string };
  finishReason?: string;
  usage?: Usage;
}
type Callback<T> = (error: grpc.ServiceError | null, value?: T) => void;
interface GatewayClient extends grpc.Client {
  chat(
    request: ChatRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: Callback<ChatResponse>,
  ): grpc.ClientUnaryCall;
  chatStream(
    request: ChatRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
  ): grpc.ClientReadableStream<ChatChunk>;
  listModels(
    request: Record<string, never>,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: Callback<{ models: Array<{ id: string; ownedBy: string }> }>,
  ): grpc.ClientUnaryCall;
}
interface HealthClient extends grpc.Client {
  check(
    request: { service: string },
    options: grpc.CallOptions,
    callback: Callback<{ status: string }>,
  ): grpc.ClientUnaryCall;
}

/** Every call has a deadline, so a server that never answers fails the test quickly instead of hanging it. */
const soon = (): grpc.CallOptions => ({ deadline: Date.now() + 5_000 });

function serviceConstructor(file: string, path: string[]): grpc.ServiceClientConstructor {
  let node: unknown = grpc.loadPackageDefinition(
    protoLoader.loadSync(`${PROTO_ROOT}/${file}`, PROTO_OPTIONS),
  );
  for (const part of path) node = (node as Record<string, unknown>)[part];
  return node as grpc.ServiceClientConstructor;
}

let fake: FakeProvider;
let t: TestGateway;
let key: string;
let gateway: GatewayClient;
let health: HealthClient;

/** `null`: no authorization metadata at all. */
const auth = (secret: string | null): grpc.Metadata => {
  const metadata = new grpc.Metadata();
  if (secret !== null) metadata.set('authorization', `Bearer ${secret}`);
  return metadata;
};

function unary<T>(call: (callback: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    call((error, value) => (error ? reject(error) : resolve(value as T)));
  });
}

const chat = (request: ChatRequest, secret: string | null = key): Promise<ChatResponse> =>
  unary<ChatResponse>((cb) => gateway.chat(request, auth(secret), soon(), cb));

function chatStream(
  request: ChatRequest,
  secret: string | null = key,
): Promise<{ chunks: ChatChunk[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const chunks: ChatChunk[] = [];
    const call = gateway.chatStream(request, auth(secret), soon());
    call.on('data', (chunk: ChatChunk) => chunks.push(chunk));
    call.on('error', (error: grpc.ServiceError) => resolve({ chunks, error }));
    call.on('end', () => resolve({ chunks }));
  });
}

async function failure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  const outcome = await promise.then(
    () => undefined,
    (e: unknown) => e as grpc.ServiceError,
  );
  if (!outcome) throw new Error('the call succeeded');
  return outcome;
}

const hello = (model = 'chat'): ChatRequest => ({ model, messages: [{ role: 'user', content: 'hello' }] });

beforeAll(async () => {
  fake = await startFakeProvider({ kind: 'openai', apiKey: 'sk-grpc-upstream' });
  t = await startTestGateway({
    overrides: {
      providers: { openai: { kind: 'openai', baseUrl: `${fake.url}/v1`, apiKey: 'sk-grpc-upstream' } },
      models: { chat: { deployments: [{ provider: 'openai', model: 'gpt-4o' }] } },
      routing: { maxAttempts: 1 },
    },
  });
  key = (await t.createKey({ name: 'grpc', project: 'grpc-project' })).key;
  const address = t.gateway.grpcAddress;
  const Gateway = serviceConstructor('flowloom/gateway/v1/gateway.proto', [
    'flowloom',
    'gateway',
    'v1',
    'Gateway',
  ]);
  const Health = serviceConstructor('grpc/health/v1/health.proto', ['grpc', 'health', 'v1', 'Health']);
  gateway = new Gateway(address, grpc.credentials.createInsecure()) as unknown as GatewayClient;
  health = new Health(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
});

afterAll(async () => {
  gateway?.close();
  health?.close();
  await t?.close();
  await fake?.close();
});

beforeEach(() => fake.reset());

describe('the gRPC Gateway service', () => {
  it('when Chat is called, then the answer carries text, usage, routing and cost, and a grpc completed event is recorded', async () => {
    fake.script({ kind: 'reply', text: 'Hello over gRPC', usage: { input: 20, output: 4, cached: 8 } });
    const response = await chat({
      model: 'chat',
      messages: [
        { role: 'system', content: 'Be nice.' },
        { role: 'user', content: 'hello' },
      ],
      maxTokens: 32,
      temperature: 0.3,
      job: 'grpc-job-1',
    });
    expect(response).toMatchObject({
      model: 'chat',
      content: 'Hello over gRPC',
      finishReason: 'stop',
      usage: { inputTokens: 20, outputTokens: 4, cachedInputTokens: 8 },
      deployment: 'openai/gpt-4o',
      attempts: 1,
    });
    expect(response.id).toBeTruthy();
    expect(response.costUsd).toBeGreaterThan(0);
    const upstream = bodyOf(lastCall(fake));
    expect(upstream).toMatchObject({ model: 'gpt-4o', max_completion_tokens: 32, temperature: 0.3 });
    expect(upstream.messages).toEqual([
      { role: 'system', content: 'Be nice.' },
      { role: 'user', content: 'hello' },
    ]);

    const event = await eventFor(t, response.requestId);
    expect(event.type).toBe(COMPLETED);
    expect(event.subject).toBe('job/grpc-job-1');
    expect(event.data).toMatchObject({
      api: 'grpc',
      stream: false,
      job: 'grpc-job-1',
      project: 'grpc-project',
      deployment: 'openai/gpt-4o',
      usage: { inputTokens: 20, outputTokens: 4, cachedInputTokens: 8 },
    });
  });

  it('when ChatStream is called, then started, text deltas, finish and usage arrive in that order', async () => {
    fake.script({
      kind: 'reply',
      chunks: ['one ', 'two ', 'three'],
      usage: { input: 11, output: 3, cached: 0 },
    });
    const { chunks, error } = await chatStream(hello());
    expect(error).toBeUndefined();
    const kinds = chunks.map((c) => c.kind);
    expect(kinds[0]).toBe('started');
    expect(kinds.slice(-2)).toEqual(['finishReason', 'usage']);
    expect(kinds.slice(1, -2).every((k) => k === 'textDelta')).toBe(true);
    expect(chunks[0]?.started).toMatchObject({ model: 'chat', deployment: 'openai/gpt-4o', attempts: 1 });
    expect(
      chunks
        .filter((c) => c.kind === 'textDelta')
        .map((c) => c.textDelta)
        .join(''),
    ).toBe('one two three');
    expect(chunks.at(-2)?.finishReason).toBe('stop');
    expect(chunks.at(-1)?.usage).toEqual({ inputTokens: 11, outputTokens: 3, cachedInputTokens: 0 });
    expect(bodyOf(lastCall(fake)).stream).toBe(true);

    const requestId = chunks[0]?.started?.requestId ?? null;
    const event = await eventFor(t, requestId);
    expect(event.type).toBe(COMPLETED);
    expect(event.data).toMatchObject({
      api: 'grpc',
      stream: true,
      usage: { inputTokens: 11, outputTokens: 3 },
    });
  });

  it('when the model calls a tool, then Chat returns the call and ChatStream streams its arguments', async () => {
    const tools = [
      {
        name: 'get_weather',
        description: 'Weather in a city',
        parametersJson: JSON.stringify({ type: 'object', properties: { city: { type: 'string' } } }),
      },
    ];
    fake.script(
      { kind: 'reply', toolCalls: [{ name: 'get_weather', arguments: { city: 'Bern' }, id: 'call_bern' }] },
      { kind: 'reply', toolCalls: [{ name: 'get_weather', arguments: { city: 'Bern' }, fragments: 3 }] },
    );
    const response = await chat({ ...hello(), tools, toolChoice: 'auto' });
    expect(response.finishReason).toBe('tool_calls');
    expect(response.toolCalls).toEqual([
      { id: 'call_bern', name: 'get_weather', arguments: '{"city":"Bern"}' },
    ]);
    expect(bodyOf(lastCall(fake)).tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather in a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ]);

    const { chunks } = await chatStream({ ...hello(), tools });
    const calls = chunks.filter((c) => c.kind === 'toolCall').map((c) => c.toolCall);
    expect(calls[0]).toMatchObject({ index: 0, name: 'get_weather' });
    expect(calls[0]?.id).toMatch(/^call_/);
    expect(JSON.parse(calls.map((c) => c?.argumentsDelta ?? '').join(''))).toEqual({ city: 'Bern' });
    expect(chunks.find((c) => c.kind === 'finishReason')?.finishReason).toBe('tool_calls');
  });

  it('when ListModels is called, then the aliases and the local model are listed', async () => {
    const { models } = await unary<{ models: Array<{ id: string; ownedBy: string }> }>((cb) =>
      gateway.listModels({}, auth(key), soon(), cb),
    );
    expect(models).toEqual(
      expect.arrayContaining([
        { id: 'chat', ownedBy: 'flowloom' },
        { id: 'flowloom-local', ownedBy: 'flowloom-local' },
      ]),
    );
  });

  it('when no authorization metadata is sent, then every method answers UNAUTHENTICATED', async () => {
    expect((await failure(chat(hello(), null))).code).toBe(grpc.status.UNAUTHENTICATED);
    const { error } = await chatStream(hello(), null);
    expect(error?.code).toBe(grpc.status.UNAUTHENTICATED);
    const list = await failure(unary((cb) => gateway.listModels({}, auth(null), soon(), cb)));
    expect(list.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(modelCalls(fake)).toHaveLength(0);
  });

  it('when the key is revoked, then Chat answers UNAUTHENTICATED', async () => {
    const created = await t.createKey({ name: 'to-revoke' });
    await chat(hello(), created.key);
    const revoked = await t.post(`/api/v1/keys/${created.id}/revoke`, {}, t.adminKey);
    expect(revoked.status).toBe(200);
    const error = await failure(chat(hello(), created.key));
    expect(error.code).toBe(grpc.status.UNAUTHENTICATED);
    const { error: streamError } = await chatStream(hello(), created.key);
    expect(streamError?.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('when the model is unknown, then Chat and ChatStream answer NOT_FOUND', async () => {
    const error = await failure(chat(hello('no-such-model')));
    expect(error.code).toBe(grpc.status.NOT_FOUND);
    expect(error.details).toContain('no-such-model');
    const { error: streamError } = await chatStream(hello('no-such-model'));
    expect(streamError?.code).toBe(grpc.status.NOT_FOUND);
    expect(modelCalls(fake)).toHaveLength(0);
  });

  it('when the upstream fails, then Chat answers UNAVAILABLE and a stream cut mid-way ends with an error status', async () => {
    fake.script({ kind: 'error', status: 500 });
    expect((await failure(chat(hello()))).code).toBe(grpc.status.UNAVAILABLE);
    fake.script({ kind: 'disconnect', afterChunks: 1, chunks: ['partial ', 'rest'] });
    const { chunks, error } = await chatStream(hello());
    expect(chunks[0]?.kind).toBe('started');
    expect(chunks.some((c) => c.textDelta === 'partial ')).toBe(true);
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('when the client cancels a ChatStream, then the upstream call is aborted', async () => {
    fake.script({ kind: 'reply', chunks: Array.from({ length: 40 }, (_, i) => `w${i} `), chunkDelayMs: 50 });
    const call = gateway.chatStream(hello(), auth(key), soon());
    let seen = 0;
    const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
      call.on('error', (error: grpc.ServiceError) => resolve(error));
      call.on('end', () => resolve(undefined));
    });
    call.on('data', (chunk: ChatChunk) => {
      if (chunk.kind === 'textDelta' && ++seen === 2) call.cancel();
    });
    expect((await ended)?.code).toBe(grpc.status.CANCELLED);
    const aborted = await fake.waitForAbort(3_000);
    expect(aborted.completed).toBe(false);
  });

  it('when the health service is checked, then the server and the Gateway service are SERVING', async () => {
    expect(await unary<{ status: string }>((cb) => health.check({ service: '' }, soon(), cb))).toEqual({
      status: 'SERVING',
    });
    expect(
      await unary<{ status: string }>((cb) =>
        health.check({ service: 'flowloom.gateway.v1.Gateway' }, soon(), cb),
      ),
    ).toEqual({ status: 'SERVING' });
    const unknown = await failure(unary((cb) => health.check({ service: 'no.such.Service' }, soon(), cb)));
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
  });
});

import Anthropic from '@anthropic-ai/sdk';
import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import OpenAI from 'openai';
import { afterAll, beforeEach } from 'vitest';
import { type FakeProvider, type RecordedRequest, startFakeProvider } from '../fakes/index.js';

export const COMPLETED = 'dev.flowloom.gateway.request.completed.v1';
export const FAILED = 'dev.flowloom.gateway.request.failed.v1';

export type RecordedEvent = Awaited<ReturnType<TestGateway['events']>>[number];

/** The event recorded for one request id, waiting briefly since streamed requests record it after the last byte. */
export async function eventFor(
  t: TestGateway,
  requestId: string | null,
  timeoutMs = 3_000,
): Promise<RecordedEvent> {
  if (!requestId) throw new Error('the response carried no x-request-id');
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = (await t.events()).find((e) => e.data.requestId === requestId);
    if (found) return found;
    if (Date.now() > until) throw new Error(`no event recorded for request ${requestId}`);
    await delay(25);
  }
}

export interface AnthropicAndOpenAI {
  anthropicFake: FakeProvider;
  openaiFake: FakeProvider;
  /** The upstream keys the fakes accept (configured on the gateway's providers). */
  anthropicKey: string;
  openaiKey: string;
  gateway: TestGateway;
  /** A member key, and the official SDKs pointed at the gateway with it. */
  key: string;
  anthropic: Anthropic;
  openai: OpenAI;
}

/**
 * An Anthropic and an OpenAI fake, and a gateway whose provider `openai` and providers `anthropic`
 * (plus `anthropicNames`, each with a circuit breaker of its own) point at them.
 */
export async function startAnthropicAndOpenAI(
  suite: string,
  options: {
    models: Record<string, unknown>;
    routing: Record<string, unknown>;
    anthropicNames?: string[];
  } & Record<string, unknown>,
): Promise<AnthropicAndOpenAI> {
  const { models, routing, anthropicNames = [], ...overrides } = options;
  const anthropicKey = `sk-ant-fake-upstream-${suite}-0123456789`;
  const openaiKey = `sk-fake-openai-upstream-${suite}-0123456789`;
  const anthropicFake = await startFakeProvider({ kind: 'anthropic', apiKey: anthropicKey });
  const openaiFake = await startFakeProvider({ kind: 'openai', apiKey: openaiKey });
  const anthropicProvider = { kind: 'anthropic', baseUrl: anthropicFake.url, apiKey: anthropicKey };
  const gateway = await startTestGateway({
    overrides: {
      ...overrides,
      providers: {
        ...Object.fromEntries(['anthropic', ...anthropicNames].map((name) => [name, anthropicProvider])),
        openai: { kind: 'openai', baseUrl: `${openaiFake.url}/v1`, apiKey: openaiKey },
      },
      models,
      routing,
    },
  });
  const key = (await gateway.createKey({ name: suite })).key;
  return {
    anthropicFake,
    openaiFake,
    anthropicKey,
    openaiKey,
    gateway,
    key,
    anthropic: new Anthropic({ baseURL: gateway.url, apiKey: key, maxRetries: 0, timeout: 10_000 }),
    openai: new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 }),
  };
}

/** An Anthropic fake and a gateway whose model `claude` is claude-sonnet-4-5 there, one attempt a request. */
export async function startClaudeBehindGateway(
  apiKey: string,
  overrides: Record<string, unknown>,
): Promise<{ fake: FakeProvider; gateway: TestGateway }> {
  const fake = await startFakeProvider({ kind: 'anthropic', apiKey });
  const gateway = await startTestGateway({
    overrides: {
      providers: { anthropic: { kind: 'anthropic', baseUrl: fake.url, apiKey } },
      models: { claude: { deployments: [{ provider: 'anthropic', model: 'claude-sonnet-4-5' }] } },
      routing: { maxAttempts: 1 },
      ...overrides,
    },
  });
  return { fake, gateway };
}

/**
 * A suite's gateway and fakes, read when the hooks run (they are started in `beforeAll`): the fakes
 * forget their recorded requests before each test, and everything is closed after the suite.
 */
export function resetAndCloseAfterSuite(
  parts: () => { gateway: TestGateway | undefined; fakes: ReadonlyArray<FakeProvider | undefined> },
): void {
  beforeEach(() => {
    for (const fake of parts().fakes) fake?.reset();
  });
  afterAll(async () => {
    const { gateway, fakes } = parts();
    await gateway?.close();
    for (const fake of fakes) await fake?.close();
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The model calls a fake saw (chat, messages, generate, embeddings), excluding anything else. */
export function modelCalls(fake: FakeProvider): RecordedRequest[] {
  return fake.requests.filter((r) => r.method === 'POST');
}

export function lastCall(fake: FakeProvider): RecordedRequest {
  const last = modelCalls(fake).at(-1);
  if (!last) throw new Error(`the ${fake.kind} fake saw no request`);
  return last;
}

export function bodyOf(request: RecordedRequest): Record<string, unknown> {
  if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body))
    throw new Error(`the recorded body is not a JSON object: ${String(request.body)}`);
  return request.body as Record<string, unknown>;
}

export { freePort } from '@flowloom/gateway/testing/ports';

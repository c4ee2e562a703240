import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from '../fakes/index.js';
import { bodyOf, delay, eventFor, FAILED, freePort, modelCalls } from './helpers.js';

const ATTEMPT_TIMEOUT_MS = 600;
const COOLDOWN_MS = 1_200;
const FAILURE_THRESHOLD = 3;

let a: FakeProvider;
let b: FakeProvider;
/** One fake per other wire format, for the providers' own retry hints. */
let hinted: Record<'anthropic' | 'gemini' | 'azure', FakeProvider>;
let t: TestGateway;
let key: string;
let client: OpenAI;

/**
 * Every scenario gets its own provider names, so its deployments (`<scenario>-a/gpt-4o`, ...) have their
 * own circuit breakers and latency averages and cannot disturb the other scenarios.
 */
const SCENARIOS = [
  'r429',
  'r500',
  'refused',
  'hang',
  'hang1',
  'garbage',
  'garbage1',
  'garbage2',
  'midstream',
  'streamfb',
  'breaker',
  'weighted',
  'cost',
  'latency',
  'retry',
  'abort',
  'r400',
  'third',
  'all429',
] as const;
type Scenario = (typeof SCENARIOS)[number];

/** Scenarios whose alias has a single deployment, on fake A. */
const SINGLE: ReadonlySet<Scenario> = new Set<Scenario>([
  'hang1',
  'garbage1',
  'garbage2',
  'midstream',
  'retry',
  'abort',
  'third',
]);

const aliasOf = (s: Scenario): string => `alias-${s}`;
const deploymentA = (s: Scenario): string => `${s}-a/gpt-4o`;
const deploymentB = (s: Scenario): string => `${s}-b/gpt-4o`;

async function chat(
  s: Scenario,
  extra: Record<string, unknown> = {},
): Promise<{ status: number; headers: Headers; body: unknown; text: string; ms: number }> {
  const started = performance.now();
  const res = await t.post(
    '/v1/chat/completions',
    { model: aliasOf(s), messages: [{ role: 'user', content: `hello ${s}` }], ...extra },
    key,
  );
  return { ...res, ms: performance.now() - started };
}

const errorOf = (body: unknown): { code?: string; type?: string; message?: string } =>
  (body as { error?: { code?: string; type?: string; message?: string } }).error ?? {};

beforeAll(async () => {
  [a, b] = await Promise.all([
    startFakeProvider({ kind: 'openai', apiKey: 'sk-fake-a' }),
    startFakeProvider({ kind: 'openai', apiKey: 'sk-fake-b' }),
  ]);
  const [anthropic, gemini, azure] = await Promise.all([
    startFakeProvider({ kind: 'anthropic', apiKey: 'sk-ant-fake' }),
    startFakeProvider({ kind: 'gemini', apiKey: 'AIza-fake' }),
    startFakeProvider({ kind: 'azure', apiKey: 'azure-fake' }),
  ]);
  hinted = { anthropic, gemini, azure };
  const refusedPort = await freePort();
  const providers: Record<string, unknown> = {
    'hint-anthropic': { kind: 'anthropic', baseUrl: anthropic.url, apiKey: 'sk-ant-fake' },
    'hint-gemini': { kind: 'gemini', baseUrl: gemini.url, apiKey: 'AIza-fake' },
    'hint-azure': { kind: 'azure', baseUrl: azure.url, apiKey: 'azure-fake', apiVersion: '2024-10-21' },
  };
  const models: Record<string, unknown> = {
    'alias-hint-anthropic': { deployments: [{ provider: 'hint-anthropic', model: 'claude-haiku-4-5' }] },
    'alias-hint-gemini': { deployments: [{ provider: 'hint-gemini', model: 'gemini-2.5-flash' }] },
    'alias-hint-azure': { deployments: [{ provider: 'hint-azure', model: 'gpt-4o-mini' }] },
  };
  for (const s of SCENARIOS) {
    providers[`${s}-a`] =
      s === 'refused'
        ? { kind: 'openai', baseUrl: `http://127.0.0.1:${refusedPort}/v1`, apiKey: 'sk-fake-a' }
        : { kind: 'openai', baseUrl: `${a.url}/v1`, apiKey: 'sk-fake-a' };
    providers[`${s}-b`] = { kind: 'openai', baseUrl: `${b.url}/v1`, apiKey: 'sk-fake-b' };
    const first = { provider: `${s}-a`, model: 'gpt-4o' };
    const second = { provider: `${s}-b`, model: 'gpt-4o' };
    if (SINGLE.has(s)) models[aliasOf(s)] = { deployments: [first] };
    else if (s === 'weighted')
      models[aliasOf(s)] = {
        strategy: 'weighted',
        deployments: [
          { ...first, weight: 3 },
          { ...second, weight: 1 },
        ],
      };
    else if (s === 'cost')
      models[aliasOf(s)] = {
        strategy: 'cost',
        deployments: [
          { ...first, price: { input: 5, output: 15 } },
          { ...second, price: { input: 0.5, output: 1.5 } },
        ],
      };
    else if (s === 'latency') models[aliasOf(s)] = { strategy: 'latency', deployments: [first, second] };
    else models[aliasOf(s)] = { deployments: [first, second] };
  }
  t = await startTestGateway({
    overrides: {
      providers,
      models,
      routing: {
        maxAttempts: 3,
        attemptTimeoutMs: ATTEMPT_TIMEOUT_MS,
        totalTimeoutMs: 10_000,
        retryBaseMs: 20,
        retryMaxMs: 2_000,
        circuitBreaker: { failureThreshold: FAILURE_THRESHOLD, cooldownMs: COOLDOWN_MS },
      },
    },
  });
  key = (await t.createKey({ name: 'routing' })).key;
  client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 });
});

afterAll(async () => {
  await t?.close();
  await Promise.all([a?.close(), b?.close(), ...Object.values(hinted ?? {}).map((f) => f.close())]);
});

beforeEach(() => {
  a.reset();
  b.reset();
});

describe('fallback between deployments', () => {
  it('when the first deployment answers 429 with retry-after, then the second answers at once and the headers say so', async () => {
    a.script({ kind: 'error', status: 429, retryAfter: 5 });
    const res = await chat('r429');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-flowloom-attempts')).toBe('2');
    expect(res.headers.get('x-flowloom-deployment')).toBe(deploymentB('r429'));
    // Another deployment does not wait for the first one's retry-after.
    expect(res.ms).toBeLessThan(3_000);
    expect(modelCalls(a)).toHaveLength(1);
    expect(modelCalls(b)).toHaveLength(1);
  });

  it('when the first deployment answers 500, then the second answers', async () => {
    a.script({ kind: 'error', status: 500 });
    const res = await chat('r500');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-flowloom-attempts')).toBe('2');
    expect(res.headers.get('x-flowloom-deployment')).toBe(deploymentB('r500'));
    const event = await eventFor(t, res.headers.get('x-request-id'));
    expect(event.data).toMatchObject({ attempts: 2, deployment: deploymentB('r500') });
  });

  it('when the first deployment refuses connections, then the second answers', async () => {
    const res = await chat('refused');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-flowloom-attempts')).toBe('2');
    expect(res.headers.get('x-flowloom-deployment')).toBe(deploymentB('refused'));
  });

  it('when the first deployment hangs, then the attempt times out, the upstream call is aborted and the second answers', async () => {
    a.script({ kind: 'hang' });
    const res = await chat('hang');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-flowloom-attempts')).toBe('2');
    expect(res.headers.get('x-flowloom-deployment')).toBe(deploymentB('hang'));
    expect(res.ms).toBeGreaterThanOrEqual(ATTEMPT_TIMEOUT_MS - 20);
    expect(res.ms).toBeLessThan(ATTEMPT_TIMEOUT_MS + 3_000);
    const aborted = await a.waitForAbort(2_000);
    expect(aborted.behaviour).toBe('hang');
  });

  it('when the only deployment hangs, then the caller gets 504 upstream_timeout in bounded time', async () => {
    a.setDefault({ kind: 'hang' });
    const res = await chat('hang1');
    expect(res.status).toBe(504);
    expect(errorOf(res.body)).toMatchObject({ code: 'upstream_timeout' });
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.ms).toBeLessThan(3 * ATTEMPT_TIMEOUT_MS + 3_000);
    const event = await eventFor(t, res.headers.get('x-request-id'));
    expect(event.type).toBe(FAILED);
    expect(event.data).toMatchObject({ errorCode: 'upstream_timeout', httpStatus: 504 });
  });

  it('when the first deployment sends a garbage body, then the second answers', async () => {
    a.script({ kind: 'garbage' });
    const res = await chat('garbage');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-flowloom-deployment')).toBe(deploymentB('garbage'));
  });

  it('when the only deployment sends a garbage body, then the caller gets a clean 502 in OpenAI format', async () => {
    a.setDefault({ kind: 'garbage' });
    const plain = await chat('garbage1');
    expect(plain.status).toBe(502);
    expect(errorOf(plain.body)).toMatchObject({ code: 'upstream_bad_response', type: 'api_error' });
    expect(plain.text).not.toContain('<html');
  });

  it('when the only deployment sends a garbage event stream, then the caller gets a clean 502 before any stream starts', async () => {
    a.setDefault({ kind: 'garbage' });
    const streamed = await chat('garbage2', { stream: true });
    expect(streamed.status).toBe(502);
    expect(streamed.headers.get('content-type')).toContain('application/json');
    expect(errorOf(streamed.body)).toMatchObject({ code: 'upstream_bad_response' });
  });

  it('when a 400 comes from upstream, then it is not retried nor sent elsewhere and maps to 400 invalid_request', async () => {
    a.script({ kind: 'error', status: 400, message: "Invalid value for 'temperature'." });
    const res = await chat('r400');
    expect(res.status).toBe(400);
    expect(errorOf(res.body)).toMatchObject({ code: 'invalid_request', type: 'invalid_request_error' });
    expect(errorOf(res.body).message).toContain("Invalid value for 'temperature'.");
    expect(modelCalls(a)).toHaveLength(1);
    expect(modelCalls(b)).toHaveLength(0);
  });

  it('when the only deployment fails twice then answers, then the answer says it took three attempts', async () => {
    a.script({ kind: 'error', status: 503 }, { kind: 'error', status: 502 });
    const res = await chat('third');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-flowloom-attempts')).toBe('3');
    expect(modelCalls(a)).toHaveLength(3);
  });
});

describe('retries on the same deployment', () => {
  it('when the only deployment answers 429 with retry-after, then the retry waits at least the hinted delay', async () => {
    a.script({ kind: 'error', status: 429, retryAfter: 0.7 });
    const res = await chat('retry');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-flowloom-attempts')).toBe('2');
    const [first, second] = modelCalls(a);
    if (!first || !second) throw new Error('expected two upstream calls');
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(690);
    expect(second.receivedAt - first.receivedAt).toBeLessThan(2_000);
  });

  it.each(['anthropic', 'gemini', 'azure'] as const)(
    'when %s answers 429 with its own retry hint, then the retry waits at least the hinted delay',
    async (kind) => {
      const fake = hinted[kind];
      fake.reset();
      // Anthropic sends retry-after, Azure also retry-after-ms, Gemini a google.rpc.RetryInfo in the body.
      fake.script({ kind: 'error', status: 429, retryAfter: 0.5 });
      const started = performance.now();
      const res = await t.post(
        '/v1/chat/completions',
        { model: `alias-hint-${kind}`, messages: [{ role: 'user', content: 'hi' }] },
        key,
      );
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get('x-flowloom-attempts')).toBe('2');
      const [first, second] = modelCalls(fake);
      if (!first || !second) throw new Error('expected two upstream calls');
      expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(490);
      expect(performance.now() - started).toBeLessThan(2_500);
    },
  );
});

describe('streams', () => {
  it('when the first deployment fails before the first byte, then the stream is served by the second', async () => {
    a.script({ kind: 'error', status: 503 });
    const { data: stream, response } = await client.chat.completions
      .create({
        model: aliasOf('streamfb'),
        messages: [{ role: 'user', content: 'stream please' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    expect(response.headers.get('x-flowloom-attempts')).toBe('2');
    expect(response.headers.get('x-flowloom-deployment')).toBe(deploymentB('streamfb'));
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toContain('stream please');
    expect(bodyOf(modelCalls(b)[0] ?? modelCalls(a)[0]!).stream).toBe(true);
  });

  it('when the first deployment drops the connection before answering a stream, then the second serves it', async () => {
    a.script({ kind: 'disconnect' });
    const stream = client.chat.completions.stream({
      model: aliasOf('streamfb'),
      messages: [{ role: 'user', content: 'again' }],
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.message.content).toContain('again');
    expect(modelCalls(b)).toHaveLength(1);
  });

  it('when the stream is cut mid-way, then the SDK stream errors instead of hanging and a failed event keeps the partial usage', async () => {
    a.script({ kind: 'disconnect', afterChunks: 2, chunks: ['alpha ', 'beta ', 'gamma ', 'delta'] });
    const { data: stream, response } = await client.chat.completions
      .create({
        model: aliasOf('midstream'),
        messages: [{ role: 'user', content: 'tell me a story' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    let text = '';
    const started = performance.now();
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(text).toBe('alpha beta ');

    const event = await eventFor(t, response.headers.get('x-request-id'));
    expect(event.type).toBe(FAILED);
    expect(event.data).toMatchObject({ stream: true, deployment: deploymentA('midstream') });
    const usage = event.data.usage as { inputTokens: number; outputTokens: number };
    expect(usage.inputTokens).toBeGreaterThan(0);
    expect(usage.outputTokens).toBeGreaterThan(0);
  });

  it('when the stream stalls mid-way, then the idle timeout ends it with an error the SDK raises', async () => {
    a.script({ kind: 'hang', afterChunks: 1, chunks: ['first ', 'never'] });
    const stream = await client.chat.completions.create({
      model: aliasOf('midstream'),
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    let text = '';
    const started = performance.now();
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(text).toBe('first ');
    expect(performance.now() - started).toBeLessThan(ATTEMPT_TIMEOUT_MS + 3_000);
    await a.waitForAbort(2_000);
  });

  it('when the caller aborts a streamed request, then the upstream sees the abort and a client_closed event is recorded', async () => {
    a.script({ kind: 'reply', chunks: Array.from({ length: 40 }, (_, i) => `w${i} `), chunkDelayMs: 50 });
    const controller = new AbortController();
    const { data: stream, response } = await client.chat.completions
      .create(
        { model: aliasOf('abort'), messages: [{ role: 'user', content: 'long' }], stream: true },
        { signal: controller.signal },
      )
      .withResponse();
    let chunks = 0;
    // The SDK ends the iteration quietly when its own signal aborts it.
    const reading = (async () => {
      for await (const _chunk of stream) {
        chunks++;
        if (chunks === 3) controller.abort();
      }
    })();
    const aborted = await a.waitForAbort(3_000);
    expect(aborted.completed).toBe(false);
    await reading;
    expect(chunks).toBeLessThan(10);
    const event = await eventFor(t, response.headers.get('x-request-id'));
    expect(event.type).toBe(FAILED);
    // A caller going away is not the provider's fault: it must not be recorded as an upstream error.
    expect(event.data).toMatchObject({ errorCode: 'client_closed', httpStatus: 499, stream: true });
  });

  it('when the caller aborts a non-streamed request, then the upstream sees the abort', async () => {
    a.script({ kind: 'reply', text: 'slow', delayMs: 400 });
    const controller = new AbortController();
    const pending = client.chat.completions
      .create(
        { model: aliasOf('abort'), messages: [{ role: 'user', content: 'slow' }] },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    await a.waitFor((r) => r.method === 'POST', 2_000);
    controller.abort();
    expect(await pending).toBeInstanceOf(OpenAI.APIUserAbortError);
    const aborted = await a.waitForAbort(3_000);
    expect(aborted.completed).toBe(false);
  });
});

describe('circuit breaker', () => {
  it('when a deployment fails failureThreshold times, then it is skipped until the cooldown ends, then probed again', async () => {
    a.setDefault({ kind: 'error', status: 500 });
    for (let i = 0; i < FAILURE_THRESHOLD; i++) {
      const res = await chat('breaker');
      expect(res.status).toBe(200);
      expect(res.headers.get('x-flowloom-deployment')).toBe(deploymentB('breaker'));
      expect(res.headers.get('x-flowloom-attempts')).toBe('2');
    }
    expect(modelCalls(a)).toHaveLength(FAILURE_THRESHOLD);
    const openedAt = performance.now();

    for (let i = 0; i < 3; i++) {
      const res = await chat('breaker');
      expect(res.status).toBe(200);
      expect(res.headers.get('x-flowloom-deployment')).toBe(deploymentB('breaker'));
      expect(res.headers.get('x-flowloom-attempts')).toBe('1');
    }
    expect(performance.now() - openedAt).toBeLessThan(COOLDOWN_MS);
    expect(modelCalls(a)).toHaveLength(FAILURE_THRESHOLD);

    await delay(COOLDOWN_MS + 100);
    a.setDefault({ kind: 'reply', text: 'recovered' });
    const probe = await chat('breaker');
    expect(probe.status).toBe(200);
    expect(probe.headers.get('x-flowloom-deployment')).toBe(deploymentA('breaker'));
    expect(modelCalls(a)).toHaveLength(FAILURE_THRESHOLD + 1);
    const after = await chat('breaker');
    expect(after.headers.get('x-flowloom-deployment')).toBe(deploymentA('breaker'));
  });
});

describe('circuit breaker and rate limits together', () => {
  it('when every deployment keeps answering 429, then callers get 429 until the breakers open, then 503 no_deployment_available', async () => {
    a.setDefault({ kind: 'error', status: 429, retryAfter: 0 });
    b.setDefault({ kind: 'error', status: 429, retryAfter: 0 });
    // With three attempts per request and a threshold of three: a,b,a then a,b,(a open) then b,(a),(b open);
    // only the fourth request finds both breakers open before trying anything.
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await chat('all429');
      outcomes.push(`${res.status} ${errorOf(res.body).code}`);
      if (i === 3) expect(res.headers.get('retry-after')).toBe(String(Math.ceil(COOLDOWN_MS / 1000)));
    }
    // What the caller learns is that it was rate limited, also when a breaker opened during its retries.
    expect(outcomes).toEqual([
      '429 rate_limited',
      '429 rate_limited',
      '429 rate_limited',
      '503 no_deployment_available',
    ]);
  });
});

describe('strategies', () => {
  it('when the strategy is weighted 3:1, then both deployments get traffic and the heavier one gets more', async () => {
    const n = 40;
    for (let i = 0; i < n; i += 4) await Promise.all([0, 1, 2, 3].map(() => chat('weighted')));
    const toA = modelCalls(a).length;
    const toB = modelCalls(b).length;
    expect(toA + toB).toBe(n);
    expect(toB).toBeGreaterThanOrEqual(2);
    expect(toA).toBeGreaterThan(toB);
  });

  it('when the strategy is cost, then the cheaper deployment answers', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await chat('cost');
      expect(res.headers.get('x-flowloom-deployment')).toBe(deploymentB('cost'));
    }
    expect(modelCalls(a)).toHaveLength(0);
  });

  it('when the strategy is latency, then once both are measured the faster deployment answers', async () => {
    a.setDefault({ kind: 'reply', text: 'slow', delayMs: 150 });
    // Unmeasured deployments go first so that each gets measured once.
    await chat('latency');
    await chat('latency');
    expect(modelCalls(a)).toHaveLength(1);
    expect(modelCalls(b)).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      const res = await chat('latency');
      expect(res.headers.get('x-flowloom-deployment')).toBe(deploymentB('latency'));
    }
    expect(modelCalls(a)).toHaveLength(1);
  });
});

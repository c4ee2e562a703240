import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from '../fakes/index.js';
import { eventFor, FAILED, modelCalls } from './helpers.js';

// routing.totalTimeoutMs bounds a request however many attempts remain: two deployments that hang,
// per-attempt timeouts that alone would allow MAX_ATTEMPTS × ATTEMPT_TIMEOUT_MS (12 s), and a total
// of TOTAL_TIMEOUT_MS. Timings are asserted loosely (a shared machine): the request ends after the
// first attempt timed out and well before a third attempt could have.

const ATTEMPT_TIMEOUT_MS = 1_500;
const TOTAL_TIMEOUT_MS = 2_000;
const MAX_ATTEMPTS = 8;

let a: FakeProvider;
let b: FakeProvider;
let t: TestGateway;
let key: string;

beforeAll(async () => {
  [a, b] = await Promise.all([
    startFakeProvider({ kind: 'openai', apiKey: 'sk-total-a' }),
    startFakeProvider({ kind: 'openai', apiKey: 'sk-total-b' }),
  ]);
  t = await startTestGateway({
    overrides: {
      providers: {
        'total-a': { kind: 'openai', baseUrl: `${a.url}/v1`, apiKey: 'sk-total-a' },
        'total-b': { kind: 'openai', baseUrl: `${b.url}/v1`, apiKey: 'sk-total-b' },
      },
      models: {
        slow: {
          deployments: [
            { provider: 'total-a', model: 'gpt-4o' },
            { provider: 'total-b', model: 'gpt-4o' },
          ],
        },
      },
      routing: {
        maxAttempts: MAX_ATTEMPTS,
        attemptTimeoutMs: ATTEMPT_TIMEOUT_MS,
        totalTimeoutMs: TOTAL_TIMEOUT_MS,
        retryBaseMs: 20,
        retryMaxMs: 50,
        // The breakers must not end the request before the deadline does.
        circuitBreaker: { failureThreshold: 100, cooldownMs: 1_000 },
      },
    },
  });
  key = (await t.createKey({ name: 'total-timeout' })).key;
});

afterAll(async () => {
  await t?.close();
  await Promise.all([a?.close(), b?.close()]);
});

beforeEach(() => {
  a.reset();
  b.reset();
  a.setDefault({ kind: 'hang' });
  b.setDefault({ kind: 'hang' });
});

async function timed(path: string, body: Record<string, unknown>) {
  const started = performance.now();
  const res = await t.post(path, body, key);
  return { ...res, ms: performance.now() - started };
}

/** Each attempt went to a deployment and ended; no attempt was made after the deadline. */
function expectTwoAttempts(): void {
  expect(modelCalls(a)).toHaveLength(1);
  expect(modelCalls(b)).toHaveLength(1);
}

describe('routing.totalTimeoutMs', () => {
  it('when every deployment hangs and the attempts could outlast the total, then an OpenAI caller gets 504 upstream_timeout at about the total, naming the attempts made', async () => {
    const res = await timed('/v1/chat/completions', {
      model: 'slow',
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(res.status).toBe(504);
    const error = (res.body as { error: { code: string; type: string; message: string } }).error;
    expect(error.code).toBe('upstream_timeout');
    expect(error.message).toContain('did not answer in time after 2 attempts');
    // At the total: before the second attempt's own timeout could have ended it, and far sooner than
    // the attempts alone allow.
    expect(res.ms).toBeGreaterThanOrEqual(TOTAL_TIMEOUT_MS - 50);
    expect(res.ms).toBeLessThan(2 * ATTEMPT_TIMEOUT_MS - 200);
    expect(res.ms).toBeLessThan((MAX_ATTEMPTS * ATTEMPT_TIMEOUT_MS) / 3);
    expectTwoAttempts();
    // Both upstream calls were aborted, none left hanging.
    await a.waitForAbort(2_000);
    await b.waitForAbort(2_000);
    const event = await eventFor(t, res.headers.get('x-request-id'));
    expect(event.type).toBe(FAILED);
    expect(event.data).toMatchObject({ errorCode: 'upstream_timeout', httpStatus: 504, attempts: 2 });
  }, 30_000);

  it('when the same happens to an Anthropic caller, then it gets a 504 Anthropic error at about the total', async () => {
    const res = await timed('/v1/messages', {
      model: 'slow',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ type: 'error', error: { type: 'api_error' } });
    expect((res.body as { error: { message: string } }).error.message).toContain('did not answer in time');
    expect(res.ms).toBeGreaterThanOrEqual(TOTAL_TIMEOUT_MS - 50);
    expect(res.ms).toBeLessThan(2 * ATTEMPT_TIMEOUT_MS - 200);
    expectTwoAttempts();
  }, 30_000);
});

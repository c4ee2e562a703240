import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from './http-helpers.js';
import { startTestGateway, type TestGateway, type TestResponse } from './support.js';

// What counts against a deployment's circuit breaker: the failures routing falls back on (5xx,
// timeouts...), never a caller's own bad request that the upstream refused (400, 413, 422).

const THRESHOLD = 3;
const COOLDOWN_MS = 800;
const ATTEMPT_TIMEOUT_MS = 300;
/** One model per scenario, each on its own deployment (the region) so their breakers are apart. */
const SCENARIOS = [
  'bad-requests',
  'probe',
  'interleaved',
  'server-errors',
  'credential',
  'timeouts',
] as const;
type Scenario = (typeof SCENARIOS)[number];

let t: TestGateway;
/** Two callers: one sends the bad requests, the other must not pay for them. */
let careless: string;
let bystander: string;

beforeAll(async () => {
  t = await startTestGateway({
    overrides: {
      models: Object.fromEntries(
        SCENARIOS.map((s) => [
          `breaker-${s}`,
          { deployments: [{ provider: 'local', model: 'flowloom-local', region: s }] },
        ]),
      ),
      routing: {
        maxAttempts: 1,
        attemptTimeoutMs: ATTEMPT_TIMEOUT_MS,
        circuitBreaker: { failureThreshold: THRESHOLD, cooldownMs: COOLDOWN_MS },
      },
    },
  });
  careless = (await t.createKey({ name: 'careless' })).key;
  bystander = (await t.createKey({ name: 'bystander' })).key;
});
afterAll(async () => t?.close());

const script = (s: Record<string, unknown>): string => `flowloom-local: ${JSON.stringify(s)}`;
const failWith = (status: number): string => script({ error: { status, message: 'bad thing' } });

function chat(s: Scenario, content: string, key: string): Promise<TestResponse> {
  return t.post(
    '/v1/chat/completions',
    { model: `breaker-${s}`, messages: [{ role: 'user', content }] },
    key,
  );
}

const codeOf = (res: TestResponse): string | undefined =>
  (res.body as { error?: { code?: string } }).error?.code;

async function expectAnswered(s: Scenario, key: string): Promise<void> {
  const res = await chat(s, 'hello', key);
  expect(res.status, res.text).toBe(200);
  expect(res.headers.get('x-flowloom-deployment')).toBe(`local/flowloom-local@${s}`);
}

async function expectCoolingDown(s: Scenario): Promise<void> {
  const res = await chat(s, 'hello', bystander);
  expect(res.status, res.text).toBe(503);
  expect(codeOf(res)).toBe('no_deployment_available');
}

describe('circuit breaker and the caller’s own errors', () => {
  it('when many requests in a row get an upstream 400, 413 or 422, then the breaker stays closed and the next request is answered by that deployment', async () => {
    const statuses = [400, 400, 413, 422, 400, 400, 400, 400];
    expect(statuses.length).toBeGreaterThan(THRESHOLD * 2);
    for (const status of statuses) {
      const res = await chat('bad-requests', failWith(status), careless);
      expect(res.status, res.text).toBe(400);
      expect(codeOf(res)).toBe('invalid_request');
    }
    await expectAnswered('bad-requests', bystander);
    await expectAnswered('bad-requests', careless);
  });

  it('when the half-open probe gets an upstream 400, then the breaker does not reopen and the next request is answered', async () => {
    for (let i = 0; i < THRESHOLD; i++)
      expect((await chat('probe', failWith(503), careless)).status).toBe(502);
    await expectCoolingDown('probe');

    await sleep(COOLDOWN_MS + 50);
    // The probe: the caller's request is refused upstream, which says nothing about the deployment.
    const probe = await chat('probe', failWith(400), careless);
    expect(probe.status, probe.text).toBe(400);
    expect(codeOf(probe)).toBe('invalid_request');
    // Well within a cooldown: a reopened breaker would refuse this with 503.
    await expectAnswered('probe', bystander);
    // That answer closed the breaker: requests pass freely again.
    await expectAnswered('probe', bystander);
    await expectAnswered('probe', careless);
  });

  it('when caller errors come between deployment failures, then they neither count nor reset the run of failures', async () => {
    // Three failures open the breaker, whatever bad requests come between them.
    const outcomes: number[] = [];
    for (const status of [503, 400, 503, 422, 400, 503]) {
      outcomes.push((await chat('interleaved', failWith(status), careless)).status);
    }
    expect(outcomes).toEqual([502, 400, 502, 400, 400, 502]);
    await expectCoolingDown('interleaved');
  });
});

describe('circuit breaker and the deployment’s failures', () => {
  it('when the deployment answers 5xx failureThreshold times, then the breaker opens for every caller', async () => {
    for (const status of [500, 503, 502]) {
      expect((await chat('server-errors', failWith(status), careless)).status).toBe(502);
    }
    await expectCoolingDown('server-errors');
  });

  it('when the provider refuses our credential (401) failureThreshold times, then the breaker opens for every caller', async () => {
    // Not the caller's fault: the deployment is misconfigured, and routing falls back on it too.
    for (let i = 0; i < THRESHOLD; i++) {
      const res = await chat('credential', failWith(401), careless);
      expect(res.status, res.text).not.toBe(400);
      expect(res.status).toBeGreaterThanOrEqual(500);
    }
    await expectCoolingDown('credential');
  });

  it('when the deployment times out failureThreshold times, then the breaker opens for every caller', async () => {
    for (let i = 0; i < THRESHOLD; i++) {
      const res = await chat(
        'timeouts',
        script({ reply: 'late', delayMs: ATTEMPT_TIMEOUT_MS * 5 }),
        careless,
      );
      expect(res.status, res.text).toBe(504);
      expect(codeOf(res)).toBe('upstream_timeout');
    }
    await expectCoolingDown('timeouts');
    // The breaker is no worse than before the fix: after the cooldown a good probe closes it.
    await sleep(COOLDOWN_MS + 50);
    await expectAnswered('timeouts', bystander);
  });
});

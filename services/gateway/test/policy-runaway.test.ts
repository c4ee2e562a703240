import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import { REQUEST_COMPLETED } from './http-helpers.js';
import {
  chat,
  eventsOfType,
  INTERVENTION,
  type PolicyGateway,
  startPolicyGateway,
  testPostgres,
} from './policy-helpers.js';

const TEST_REDIS_URL = process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const GUARD = `
name: runaway-guard
rules:
  - id: agent-loop
    description: the same prompt over and over
    condition: signals.repeated_prompts >= 4
    action: stop_job
    message: the job kept sending the same prompt
  - id: spend-spike
    condition: signals.spend_per_minute > 0.5
    action: block
    message: spending faster than $0.50 a minute
  - id: error-storm
    condition: signals.error_rate >= 0.5 && signals.requests_per_minute >= 4
    action: { type: throttle, delayMs: 50 }
  - id: deep-agent
    condition: signals.tool_call_depth > 20
    action: alert
`;

// flowloom-local is free; a price makes spend measurable ($1 per 1,000 tokens).
const OVERRIDES = {
  prices: { 'flowloom-local': { input: 1000, output: 1000 } },
  routing: { maxAttempts: 1 },
};

let pg: TestDatabase;
let t: PolicyGateway;
let key: string;

beforeAll(async () => {
  pg = await testPostgres();
  t = await startPolicyGateway(GUARD, { overrides: OVERRIDES, db: pg.db });
  key = (await t.createKey({ name: 'agents' })).key;
});
afterAll(async () => {
  await t?.close();
  await pg?.drop();
});

const job = (name: string) => ({ 'x-flowloom-job': name });

const WORDS = (
  'invoice parser migration cluster latency summary customer refund schema report deploy budget release ' +
  'incident contract review forecast backlog ticket audit pipeline vendor payroll quota dashboard ' +
  'onboarding churn roadmap warehouse shipment pricing newsletter campaign benchmark firmware sensor ' +
  'license renewal tenant gateway cache index replica archive export webhook invoice-run ledger mailbox ' +
  'calendar survey retention segment catalog checkout coupon bundle vault token rotation alerting runbook'
).split(' ');
const TEMPLATES = [
  (w: string[]) => `Explain how the ${w[0]} relates to the ${w[1]} and suggest one change to the ${w[2]}.`,
  (w: string[]) =>
    `Draft a short note to the ${w[0]} team about the ${w[1]} delay and its effect on ${w[2]}.`,
  (w: string[]) => `List three risks of moving the ${w[0]} into the ${w[1]} without touching the ${w[2]}.`,
  (w: string[]) => `Compare ${w[0]} and ${w[1]} for a small company; which matters more for ${w[2]}?`,
  (w: string[]) => `Write a SQL query that joins ${w[0]} with ${w[1]} and groups by ${w[2]}.`,
];
/** A distinct, realistic prompt per index: five templates, three words never reused within 20 prompts. */
function benignPrompt(i: number): string {
  const words = [0, 1, 2].map((n) => WORDS[(i * 3 + n) % WORDS.length]!);
  return TEMPLATES[i % TEMPLATES.length]!(words);
}

describe('runaway detection through the gateway', () => {
  it('when an agent loops on the same prompt, then the job is stopped within 3 requests of the threshold and stays stopped', async () => {
    const loop = chat('Run the build again and tell me whether it passes. The previous attempt failed.', {
      outputTokens: 5,
    });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await t.post('/v1/chat/completions', loop, key, job('looper'));
      statuses.push(res.status);
      if (res.status === 403) break;
    }
    // repeated_prompts reaches 4 on the 5th identical prompt: that request is the intervention.
    const crossing = 5;
    const intervention = statuses.indexOf(403) + 1;
    expect(intervention).toBeGreaterThanOrEqual(crossing);
    expect(intervention - crossing).toBeLessThanOrEqual(3);
    const stopped = (await eventsOfType(t, INTERVENTION)).find((e) => e.data.job === 'looper');
    expect(stopped?.data).toMatchObject({
      action: 'stop_job',
      enforced: true,
      rule: 'agent-loop',
      thresholds: [{ path: 'signals.repeated_prompts', operator: '>=', value: 4 }],
    });
    expect((stopped!.data.signals as Record<string, number>).repeated_prompts).toBeGreaterThanOrEqual(4);
    const status = await t.get('/api/v1/jobs/looper', t.adminKey);
    expect(status.body).toMatchObject({ status: 'stopped', stoppedBy: { rule: 'agent-loop' } });
    const again = await t.post('/v1/chat/completions', chat('something else entirely'), key, job('looper'));
    expect(again.status).toBe(403);
  });

  it('when spend spikes, then requests are blocked within 3 requests of crossing $0.50 a minute', async () => {
    const spent: number[] = [];
    const outcomes: number[] = [];
    for (let i = 0; i < 12; i++) {
      const expensive = i >= 3;
      const res = await t.post(
        '/v1/chat/completions',
        chat(benignPrompt(100 + i), { inputTokens: 10, outputTokens: expensive ? 200 : 2 }),
        key,
        job('spender'),
      );
      outcomes.push(res.status);
      if (res.status !== 200) break;
      const cost = (await eventsOfType(t, REQUEST_COMPLETED)).find(
        (e) => e.data.requestId === res.headers.get('x-request-id'),
      )?.data.costUsd as number;
      spent.push((spent.at(-1) ?? 0) + cost);
    }
    const crossedAfter = spent.findIndex((total) => total > 0.5) + 1; // requests answered when the threshold was crossed
    const blockedAt = outcomes.indexOf(403) + 1;
    expect(crossedAfter).toBeGreaterThan(0);
    expect(blockedAt).toBeGreaterThan(crossedAfter);
    expect(blockedAt - crossedAfter).toBeLessThanOrEqual(3);
    const blocked = (await eventsOfType(t, INTERVENTION)).find((e) => e.data.job === 'spender');
    expect(blocked?.data).toMatchObject({
      action: 'block',
      rule: 'spend-spike',
      reason: 'spending faster than $0.50 a minute',
    });
    expect((blocked!.data.signals as Record<string, number>).spend_per_minute).toBeGreaterThan(0.5);
  });

  it('when the provider fails in a storm, then the job is throttled and the intervention shows the error rate', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await t.post(
        '/v1/chat/completions',
        chat(benignPrompt(200 + i), i === 0 ? {} : { error: { status: 500 } }),
        key,
        job('stormy'),
      );
      expect(res.status).toBe(i === 0 ? 200 : 502);
    }
    const throttled = (await eventsOfType(t, INTERVENTION)).filter(
      (e) => e.data.job === 'stormy' && e.data.action === 'throttle',
    );
    expect(throttled.length).toBeGreaterThan(0);
    expect((throttled[0]!.data.signals as Record<string, number>).error_rate).toBeGreaterThanOrEqual(0.5);
  });

  it('when traffic is benign (varied prompts, modest spend, a stray error), then nothing intervenes', async () => {
    const before = (await eventsOfType(t, INTERVENTION)).length;
    for (let i = 0; i < 40; i++) {
      const res = await t.post(
        '/v1/chat/completions',
        chat(benignPrompt(i), i === 17 ? { error: { status: 503 } } : { inputTokens: 5, outputTokens: 1 }),
        key,
        job('benign'),
      );
      // 40 requests in a second at $0.006 each: $0.24 a minute, under the spike threshold.
      expect(res.status, res.text).toBe(i === 17 ? 502 : 200);
    }
    // A chat that repeats a short greeting a few times is not a loop either.
    for (let i = 0; i < 3; i++) await t.post('/v1/chat/completions', chat('hello'), key, job('benign'));
    expect((await eventsOfType(t, INTERVENTION)).slice(before)).toEqual([]);
  });
});

describe('runaway detection shared through Redis by two gateway replicas', () => {
  let a: PolicyGateway;
  let b: PolicyGateway;
  beforeAll(async () => {
    // Redis is required: without it this fails with the reason, never skips.
    const redisUrl = TEST_REDIS_URL;
    const isolated = `flowloom-test-${randomBytes(4).toString('hex')}`;
    // Two replicas: one database, one Redis, each its own process state.
    a = await startPolicyGateway(GUARD, { overrides: { ...OVERRIDES, redisUrl }, db: pg.db });
    b = await startPolicyGateway(GUARD, {
      overrides: { ...OVERRIDES, redisUrl },
      db: await pg.openAnother(),
    });
    key = (await a.createKey({ name: isolated })).key;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('when a loop alternates between replicas, then the shared signals stop it and both refuse the job', async () => {
    const jobId = `loop-${randomBytes(4).toString('hex')}`;
    const loop = chat(
      'Fetch the page again and check whether the price changed since the last time you looked.',
    );
    const statuses: number[] = [];
    for (let i = 0; i < 8 && !statuses.includes(403); i++) {
      const res = await (i % 2 ? b : a).post('/v1/chat/completions', loop, key, job(jobId));
      statuses.push(res.status);
    }
    expect(statuses.indexOf(403) + 1).toBeLessThanOrEqual(5 + 3);
    expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200]);
    expect((await a.post('/v1/chat/completions', chat('x'), key, job(jobId))).status).toBe(403);
    expect((await b.post('/v1/chat/completions', chat('x'), key, job(jobId))).status).toBe(403);
    expect((await b.get(`/api/v1/jobs/${jobId}`, b.adminKey)).body).toMatchObject({ status: 'stopped' });
  });
});

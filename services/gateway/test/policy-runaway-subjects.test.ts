import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import {
  chat,
  decisionOf,
  eventsOfType,
  INTERVENTION,
  type PolicyGateway,
  startPolicyGateway,
  testPostgres,
} from './policy-helpers.js';

const TEST_REDIS_URL = process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

// The job rule alone never sees a loop spread over job ids: each job is new. The key rule does.
const GUARD = `
name: key-guard
rules:
  - id: job-loop
    condition: signals.repeated_prompts >= 4
    action: stop_job
  - id: key-loop
    description: the key sends the same prompt under ever new job ids
    condition: signals.key.repeated_prompts >= 4 && signals.job.requests_per_minute <= 1
    action: block
    message: the key keeps sending the same prompt across jobs
  - id: session-seen
    condition: has(signals.session) && signals.session.requests_per_minute > 1000
    action: alert
`;

const LOOP = 'Summarize the latest build log and tell me whether the deploy can go ahead now.';
const job = (name: string) => ({ 'x-flowloom-job': name });

type Post = (i: number, jobId: string) => Promise<{ status: number; headers: Headers }>;

/** Sends the same prompt under a new job id each time until refused; returns the statuses. */
async function spreadLoop(post: Post): Promise<{ statuses: number[]; lastDecision: string | null }> {
  const run = randomBytes(3).toString('hex');
  const statuses: number[] = [];
  let lastDecision: string | null = null;
  for (let i = 0; i < 9 && !statuses.includes(403); i++) {
    const res = await post(i, `spread-${run}-${i}`);
    statuses.push(res.status);
    lastDecision = res.headers.get('x-flowloom-decision');
  }
  return { statuses, lastDecision };
}

function expectCaught(statuses: number[]): void {
  // key.repeated_prompts reaches 4 on the 5th identical prompt: that request is refused.
  expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200]);
  expect(statuses.indexOf(403) + 1).toBeGreaterThanOrEqual(5);
  expect(statuses.indexOf(403) + 1 - 5).toBeLessThanOrEqual(3);
}

let pg: TestDatabase;
beforeAll(async () => {
  pg = await testPostgres();
});
afterAll(async () => {
  await pg?.drop();
});

describe('signals per job, session and key (in-process)', () => {
  let t: PolicyGateway;
  let key: string;
  beforeAll(async () => {
    t = await startPolicyGateway(GUARD, { db: pg.db });
    key = (await t.createKey({ name: 'spreader' })).key;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('when a key loops the same prompt across many job ids, then a rule on signals.key catches it and the decision records the values', async () => {
    const { statuses, lastDecision } = await spreadLoop((_i, jobId) =>
      t.post('/v1/chat/completions', chat(LOOP), key, { ...job(jobId), 'x-flowloom-session': 'sess-1' }),
    );
    expectCaught(statuses);
    const blocked = (await eventsOfType(t, INTERVENTION)).find((e) => e.data.rule === 'key-loop');
    expect(blocked?.data).toMatchObject({
      action: 'block',
      enforced: true,
      reason: 'the key keeps sending the same prompt across jobs',
      thresholds: [
        { path: 'signals.key.repeated_prompts', operator: '>=', value: 4 },
        { path: 'signals.job.requests_per_minute', operator: '<=', value: 1 },
      ],
    });
    const signals = blocked!.data.signals as Record<string, number>;
    expect(signals['key.repeated_prompts']).toBeGreaterThanOrEqual(4);
    expect(signals['session.repeated_prompts']).toBeGreaterThanOrEqual(4);
    // `signals.*` is still the most specific subject: the brand-new job.
    expect(signals.repeated_prompts).toBe(0);
    expect(signals['job.repeated_prompts']).toBe(0);
    const decision = await decisionOf(t, lastDecision);
    const evaluations = decision.evaluations as Array<{ inputs: Record<string, unknown> }>;
    expect(evaluations[0]?.inputs).toMatchObject({
      'signals.repeated_prompts': 0,
      'signals.job.requests_per_minute': 1,
      'signals.session': true,
    });
    expect(evaluations[0]?.inputs['signals.key.repeated_prompts']).toBeGreaterThanOrEqual(4);
    // The recorded input nests them as the engine reads them, so a replay sees them too.
    const input = decision.input as {
      signals: { repeated_prompts: number; key: { repeated_prompts: number } };
    };
    expect(input.signals.repeated_prompts).toBe(0);
    expect(input.signals.key.repeated_prompts).toBeGreaterThanOrEqual(4);
    // No job was stopped: the job rule never saw a loop.
    expect((await eventsOfType(t, INTERVENTION)).some((e) => e.data.rule === 'job-loop')).toBe(false);
  });

  it('when another key sends the same prompt, then its own key window is clean', async () => {
    const other = (await t.createKey({ name: 'bystander' })).key;
    const res = await t.post('/v1/chat/completions', chat(LOOP), other, job('bystander-1'));
    expect(res.status).toBe(200);
  });
});

describe('signals per key shared through Redis by two gateway replicas', () => {
  let a: PolicyGateway;
  let b: PolicyGateway;
  let key: string;
  beforeAll(async () => {
    // Redis is required: without it this fails with the reason, never skips.
    const overrides = { redisUrl: TEST_REDIS_URL };
    a = await startPolicyGateway(GUARD, { overrides, db: pg.db });
    b = await startPolicyGateway(GUARD, { overrides, db: await pg.openAnother() });
    key = (await a.createKey({ name: `spreader-${randomBytes(4).toString('hex')}` })).key;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('when a key loops across job ids and replicas, then the shared key window catches it', async () => {
    const { statuses } = await spreadLoop((i, jobId) =>
      (i % 2 ? b : a).post('/v1/chat/completions', chat(LOOP), key, job(jobId)),
    );
    expectCaught(statuses);
    const all = [...(await eventsOfType(a, INTERVENTION)), ...(await eventsOfType(b, INTERVENTION))];
    const blocked = all.find((e) => e.data.rule === 'key-loop');
    expect(blocked).toBeDefined();
    const signals = blocked!.data.signals as Record<string, number>;
    expect(signals['key.repeated_prompts']).toBeGreaterThanOrEqual(4);
    // The request had no session: that scope is absent rather than zero-filled in the record.
    expect(Object.keys(signals).some((k) => k.startsWith('session.'))).toBe(false);
  });
});

import { canaryBucket } from '@flowloom/policy-engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import { REQUEST_COMPLETED, sleep } from './http-helpers.js';
import {
  chat,
  decisionOf,
  eventsOfType,
  INTERVENTION,
  type PolicyGateway,
  startPolicyGateway,
  testPostgres,
  within,
} from './policy-helpers.js';

const BLOCK_AGENTS = `
name: agents-off
rules:
  - id: no-agents
    condition: request.job.startsWith("agent-")
    action: block
    message: agents are paused
`;

let pg: TestDatabase;
beforeAll(async () => {
  pg = await testPostgres();
});
afterAll(async () => pg?.drop());

const job = (name: string) => ({ 'x-flowloom-job': name });

describe('shadow', () => {
  let t: PolicyGateway;
  beforeAll(async () => {
    t = await startPolicyGateway(BLOCK_AGENTS, { mode: 'shadow', db: pg.db });
  });
  afterAll(async () => t?.close());

  it('when a version is in shadow, then nothing changes for the caller and the decision records what it would have done', async () => {
    const res = await t.post('/v1/chat/completions', chat('hi'), t.adminKey, job('agent-1'));
    expect(res.status, res.text).toBe(200);
    const decision = await decisionOf(t, res.headers.get('x-flowloom-decision'));
    expect(decision).toMatchObject({
      verdict: 'allow',
      actions: [],
      intendedVerdict: 'block',
      intendedActions: [{ ruleId: 'no-agents', policy: 'agents-off', action: { type: 'block' } }],
      enforced: false,
      mode: 'shadow',
      rule: 'no-agents',
    });
    const flagged = (await eventsOfType(t, INTERVENTION)).find(
      (e) => e.data.decisionId === res.headers.get('x-flowloom-decision'),
    );
    expect(flagged?.data).toMatchObject({ action: 'block', enforced: false, mode: 'shadow' });
    // The request's own event names the decision taken before the call.
    const completed = (await eventsOfType(t, REQUEST_COMPLETED)).find(
      (e) => e.data.requestId === decision.requestId,
    );
    expect(completed?.data.decisionId).toBe(res.headers.get('x-flowloom-decision'));
  });
});

describe('canary', () => {
  let t: PolicyGateway;
  beforeAll(async () => {
    t = await startPolicyGateway(BLOCK_AGENTS, { mode: 'canary', percent: 50, db: pg.db });
  });
  afterAll(async () => t?.close());

  it('when a version is in canary, then a stable, hash-bucketed share of jobs is enforced and the rest is shadowed', async () => {
    const jobs = Array.from({ length: 24 }, (_, i) => `agent-${i}`);
    let version = '';
    const blocked = new Set<string>();
    for (const name of jobs) {
      const res = await t.post('/v1/chat/completions', chat('hi'), t.adminKey, job(name));
      expect([200, 403]).toContain(res.status);
      if (res.status === 403) blocked.add(name);
      const decision = await decisionOf(t, res.headers.get('x-flowloom-decision'));
      version = String(decision.version);
      const evaluation = (
        decision.evaluations as Array<{ canary: { bucket: number; enforced: boolean } }>
      )[0]!;
      expect(evaluation.canary.bucket).toBe(canaryBucket(version, name));
      expect(evaluation.canary.enforced).toBe(res.status === 403);
    }
    // The engine's buckets decide: below 50% x 100 basis points is enforced.
    const expected = new Set(jobs.filter((name) => canaryBucket(version, name) < 5000));
    expect(blocked).toEqual(expected);
    expect(blocked.size).toBeGreaterThan(0);
    expect(blocked.size).toBeLessThan(jobs.length);
    // The same job lands in the same bucket every time.
    for (const name of jobs.slice(0, 6)) {
      const again = await t.post('/v1/chat/completions', chat('again'), t.adminKey, job(name));
      expect(again.status === 403).toBe(blocked.has(name));
    }
  });
});

describe('a new version of the policy file', () => {
  let t: PolicyGateway;
  beforeAll(async () => {
    t = await startPolicyGateway(BLOCK_AGENTS, { db: pg.db });
  });
  afterAll(async () => t?.close());

  const active = async () =>
    (await t.get('/api/v1/gateway/policy', t.adminKey)).body as {
      revision: number;
      policies: Array<{ name: string; stable?: string }>;
    };

  it('when the file changes, then the running gateway enforces the new version within a second', async () => {
    const before = await active();
    expect((await t.post('/v1/chat/completions', chat('hi'), t.adminKey, job('agent-9'))).status).toBe(403);
    t.rewrite(BLOCK_AGENTS.replace('action: block', 'action: alert'));
    const elapsed = await within(1_000, async () => (await active()).revision > before.revision);
    expect(elapsed).toBeLessThan(1_000);
    const after = await active();
    expect(after.policies[0]?.stable).not.toBe(before.policies[0]?.stable);
    expect((await t.post('/v1/chat/completions', chat('hi'), t.adminKey, job('agent-9'))).status).toBe(200);
  });

  it('when the file becomes invalid, then the previous version stays in force', async () => {
    const before = await active();
    t.rewrite(`${BLOCK_AGENTS.replace('action: block', 'action: blok')}`);
    await sleep(800);
    expect(await active()).toEqual(before);
    t.rewrite(BLOCK_AGENTS.replace('request.job.startsWith("agent-")', 'request.job.startsWith('));
    await sleep(800);
    expect(await active()).toEqual(before);
  });
});

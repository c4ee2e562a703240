import {
  createEvent,
  type DecisionRecord,
  type Intervention,
  POLICY_DECISION,
  POLICY_INTERVENTION,
  uuidv7,
} from '@flowloom/contracts';
import type { Db } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at, startTestPolicyService, type TestPolicyService, testSchema } from './support.js';

const V1 = `# agents may run, but not loop
name: guard
rules:
  - id: loop
    condition: signals.repeated_prompts >= 5
    action: stop_job
`;
// Same content: other comments, key order, quoting and a spelled-out default.
const V1_AGAIN = `name: "guard"
rules:
  - condition: "signals.repeated_prompts >= 5"
    id: loop
    priority: 0
    action: { type: stop_job }
`;
const V2 = `${V1}  - id: no-agents
    condition: request.job.startsWith("agent-")
    action: block
    message: agents are paused
`;

let schema: Awaited<ReturnType<typeof testSchema>>;
let db: Db;
let t: TestPolicyService;

beforeAll(async () => {
  schema = await testSchema();
  db = await schema.open();
  t = await startTestPolicyService(db);
});
afterAll(async () => {
  await t?.close();
  await schema?.drop();
});

const push = (source: string, as = 'alice', message = 'change', filename = 'guard.yaml') =>
  t.call('POST', '/api/v1/policies', as, { source, filename, message });

describe('push, versions and diff', () => {
  let v1: string;
  let v2: string;

  it('when a policy is pushed, then it is stored as an immutable, content-hashed version with its author', async () => {
    const res = await push(V1, 'alice', 'first guard');
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      created: true,
      name: 'guard',
      seq: 1,
      author: 'alice',
      message: 'first guard',
    });
    v1 = at<string>(res.body, 'version');
    expect(v1).toMatch(/^[0-9a-f]{64}$/);

    const again = await push(V1_AGAIN, 'bob', 'same thing');
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: false, version: v1, seq: 1, author: 'alice' });

    const stored = await t.call('GET', `/api/v1/policies/guard/versions/${v1.slice(0, 10)}`);
    expect(stored.body).toMatchObject({ version: v1, source: V1, format: 'yaml' });
  });

  it('when a changed policy is pushed, then it gets the next number, its predecessor and a diff', async () => {
    const res = await push(V2, 'alice', 'pause agents');
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      seq: 2,
      previous: v1,
      diff: { added: ['no-agents'], removed: [], changed: [] },
    });
    v2 = at<string>(res.body, 'version');
    const diff = await t.call('GET', '/api/v1/policies/guard/diff');
    expect(diff.status).toBe(200);
    expect(at<string>(diff.body, 'text')).toContain('no-agents');
    const explicit = await t.call(
      'GET',
      `/api/v1/policies/guard/diff?from=${v2.slice(0, 8)}&to=${v1.slice(0, 8)}`,
    );
    expect(at(explicit.body, 'diff.removed.0.id')).toBe('no-agents');
  });

  it.each([
    [
      'YAML syntax',
      'name: guard\nrules:\n  - id: x\n    condition: [unclosed\n',
      /guard\.yaml:\d+:\d+: invalid YAML: /,
    ],
    [
      'an unknown field',
      `${V1}    priorty: 3\n`,
      /guard\.yaml:7:5: rules\[0\]\.priorty: .*did you mean "priority"/,
    ],
    ['a CEL type error', V1.replace('>= 5', '>= "five"'), /guard\.yaml:5:\d+: rules\[0\]\.condition: /],
    [
      'an unknown action',
      V1.replace('stop_job', 'stop_jobs'),
      /guard\.yaml:6:\d+: rules\[0\]\.action: .*stop_job/,
    ],
  ])(
    'when a policy has %s, then the push is refused with a pointed message and nothing is stored',
    async (_what, source, message) => {
      const before = await t.call('GET', '/api/v1/policies/guard');
      const res = await push(source);
      expect(res.status, res.text).toBe(400);
      expect(at(res.body, 'error.code')).toBe('invalid_request');
      expect(at<string>(res.body, 'error.message')).toMatch(message);
      const validated = await t.call('POST', '/api/v1/policies/validate', 'alice', {
        source,
        filename: 'guard.yaml',
      });
      expect(validated.body).toMatchObject({ ok: false });
      expect(await t.call('GET', '/api/v1/policies/guard')).toEqual(before);
    },
  );

  it('when a caller is not an admin, then policies are not shown or changed', async () => {
    expect((await t.call('GET', '/api/v1/policies', 'member')).status).toBe(403);
    expect((await t.call('GET', '/api/v1/policies', '')).status).toBe(401);
    expect((await push(V2, 'member')).status).toBe(403);
  });
});

describe('rollout: shadow, canary and enforce with approval, rollback', () => {
  let v1: string;
  let v2: string;
  const bundle = async () =>
    (await t.call('GET', '/api/v1/policy-bundle')).body as {
      revision: number;
      policies: Array<{
        name: string;
        stable?: { version: string };
        candidate?: { version: string; mode: string; percent?: number };
      }>;
    };
  const guard = async () => (await bundle()).policies.find((p) => p.name === 'guard');

  beforeAll(async () => {
    const versions = at<Array<{ version: string; seq: number }>>(
      (await t.call('GET', '/api/v1/policies/guard')).body,
      'versions',
    );
    v1 = versions.find((v) => v.seq === 1)!.version;
    v2 = versions.find((v) => v.seq === 2)!.version;
  });

  it('when the author puts a version in shadow, then it applies at once without approval', async () => {
    const res = await t.call('POST', '/api/v1/policies/guard/promotions', 'alice', {
      version: v1,
      mode: 'shadow',
    });
    expect(res.status, res.text).toBe(201);
    expect(await guard()).toMatchObject({ candidate: { version: v1, mode: 'shadow' } });
  });

  it('when enforcing needs approval, then the author cannot approve it, and another person can', async () => {
    const requested = await t.call('POST', '/api/v1/policies/guard/promotions', 'alice', {
      version: v1,
      mode: 'enforce',
    });
    expect(requested.status).toBe(202);
    const id = at<string>(requested.body, 'promotion.id');
    expect(await guard()).toMatchObject({ candidate: { version: v1, mode: 'shadow' } });

    const self = await t.call('POST', `/api/v1/promotions/${id}/approve`, 'alice');
    expect(self.status).toBe(403);
    expect(at<string>(self.body, 'error.message')).toMatch(/alice wrote version .* cannot approve/);
    // A key alice's key created, whatever owner it names, and a key of a key she created: refused.
    for (const sock of ['mallory_by_alice', 'carol_by_alice']) {
      const bypass = await t.call('POST', `/api/v1/promotions/${id}/approve`, sock);
      expect(bypass.status).toBe(403);
      expect(at<string>(bypass.body, 'error.message')).toContain("descends from the author's key alice-key");
    }
    // A key created by a person other than alice: independent of her.
    const approved = await t.call('POST', `/api/v1/promotions/${id}/approve`, 'bob_by_dave');
    expect(approved.status, approved.text).toBe(200);
    expect(approved.body).toMatchObject({
      promotion: {
        status: 'applied',
        approvedBy: 'bob',
        author: 'alice',
        approver: { keyId: 'bob_by_dave-key', owner: 'bob' },
      },
    });
    const after = await guard();
    expect(after?.stable?.version).toBe(v1);
    expect(after?.candidate).toBeUndefined();
    expect((await t.call('POST', `/api/v1/promotions/${id}/approve`, 'carol')).status).toBe(409);

    const events = await t.events();
    const approval = events.find((e) => e.type === 'dev.flowloom.policy.promotion.approved.v1');
    expect(approval?.data).toMatchObject({
      promotionId: id,
      approvedBy: 'bob',
      author: 'alice',
      mode: 'enforce',
      authorKey: 'alice-key',
      authorLineage: [{ keyId: 'bootstrap-key', root: true }],
      approver: {
        keyId: 'bob_by_dave-key',
        owner: 'bob',
        root: false,
        lineage: [
          { keyId: 'dave-key', owner: 'dave', root: false },
          { keyId: 'bootstrap-key', owner: 'admin', root: true },
        ],
      },
    });
  });

  it('when a canary is approved, then the bundle carries the share, and enforce after it makes the version stable', async () => {
    const canary = await t.call('POST', '/api/v1/policies/guard/promotions', 'bob', {
      version: v2,
      mode: 'canary',
      percent: 25,
    });
    expect(canary.status).toBe(202);
    // bob requested, but alice wrote v2: bob may approve his own request for alice's version.
    expect(
      (await t.call('POST', `/api/v1/promotions/${at<string>(canary.body, 'promotion.id')}/approve`, 'alice'))
        .status,
    ).toBe(403);
    expect(
      (await t.call('POST', `/api/v1/promotions/${at<string>(canary.body, 'promotion.id')}/approve`, 'bob'))
        .status,
    ).toBe(200);
    expect(await guard()).toMatchObject({
      stable: { version: v1 },
      candidate: { version: v2, mode: 'canary', percent: 25 },
    });

    const enforce = await t.call('POST', '/api/v1/policies/guard/promotions', 'alice', {
      version: v2,
      mode: 'enforce',
    });
    await t.call('POST', `/api/v1/promotions/${at<string>(enforce.body, 'promotion.id')}/approve`, 'carol');
    const after = await guard();
    expect(after?.stable?.version).toBe(v2);
    expect(after?.candidate).toBeUndefined();
  });

  it('when rolled back, then the previous deployment is back; with --to, that version alone is enforced', async () => {
    const before = await bundle();
    const back = await t.call('POST', '/api/v1/policies/guard/rollback', 'carol', {});
    expect(back.status, back.text).toBe(200);
    expect(await guard()).toMatchObject({
      stable: { version: v1 },
      candidate: { version: v2, mode: 'canary' },
    });
    expect((await bundle()).revision).toBeGreaterThan(before.revision);

    await t.call('POST', '/api/v1/policies/guard/rollback', 'carol', { to: v1.slice(0, 12) });
    const pinned = await guard();
    expect(pinned?.stable?.version).toBe(v1);
    expect(pinned?.candidate).toBeUndefined();
    const history = at<Array<{ reason: string; actor: string }>>(
      (await t.call('GET', '/api/v1/policies/guard')).body,
      'history',
    );
    expect(history[0]).toMatchObject({
      reason: `rollback to ${v1.slice(0, 12)}`,
      actor: 'key/carol-key (carol)',
    });
  });

  it('when rollback --to names a version never enforced, then it is refused and nothing changes; promotion is the way', async () => {
    const V3 = `${V2}  - id: no-batch
    condition: request.job.startsWith("batch-")
    action: block
`;
    const pushed = await push(V3, 'alice', 'unreviewed');
    expect(pushed.status, pushed.text).toBe(201);
    const v3 = at<string>(pushed.body, 'version');
    const before = await bundle();
    const historyBefore = at<unknown[]>((await t.call('GET', '/api/v1/policies/guard')).body, 'history');

    const bypass = await t.call('POST', '/api/v1/policies/guard/rollback', 'alice', { to: v3.slice(0, 12) });
    expect(bypass.status, bypass.text).toBe(409);
    const message = at<string>(bypass.body, 'error.message');
    expect(message).toContain(`Version ${v3.slice(0, 12)}`);
    expect(message).toMatch(/never enforced/);
    expect(message).toMatch(/promote guard .* --mode enforce/);
    expect(message).toMatch(/approve/);
    expect(await bundle()).toEqual(before);
    expect(at<unknown[]>((await t.call('GET', '/api/v1/policies/guard')).body, 'history')).toHaveLength(
      historyBefore.length,
    );

    // A shadow deployment is not enforcement either.
    await t.call('POST', '/api/v1/policies/guard/promotions', 'alice', { version: v3, mode: 'shadow' });
    expect((await t.call('POST', '/api/v1/policies/guard/rollback', 'alice', { to: v3 })).status).toBe(409);
    // v2 was enforced before (then rolled back from): going back to it is allowed.
    const toV2 = await t.call('POST', '/api/v1/policies/guard/rollback', 'carol', { to: v2 });
    expect(toV2.status, toV2.text).toBe(200);
    expect((await guard())?.stable?.version).toBe(v2);
    expect((await t.call('POST', '/api/v1/policies/guard/rollback', 'carol', { to: v1 })).status).toBe(200);
    expect((await guard())?.stable?.version).toBe(v1);
  });

  it('when a promotion is impossible, then it is refused at request time', async () => {
    const already = await t.call('POST', '/api/v1/policies/guard/promotions', 'bob', {
      version: v1,
      mode: 'canary',
      percent: 10,
    });
    expect(already.status).toBe(409);
    const unknown = await t.call('POST', '/api/v1/policies/guard/promotions', 'bob', {
      version: 'abcdef0',
      mode: 'shadow',
    });
    expect(unknown.status).toBe(404);
  });
});

describe('decisions and replay', () => {
  const guardVersion = async (seq: number): Promise<string> =>
    at<Array<{ version: string; seq: number }>>(
      (await t.call('GET', '/api/v1/policies/guard')).body,
      'versions',
    ).find((v) => v.seq === seq)!.version;
  const decision = (over: Partial<DecisionRecord> & { job: string; version: string }): DecisionRecord => ({
    decisionId: uuidv7(),
    requestId: uuidv7(),
    at: new Date().toISOString(),
    keyId: 'k1',
    verdict: 'allow',
    actions: [],
    intendedVerdict: 'allow',
    intendedActions: [],
    enforced: true,
    policy: 'guard',
    mode: 'enforce',
    rule: null,
    evaluationMicros: 4.2,
    evaluations: [
      {
        policy: 'guard',
        version: over.version,
        role: 'stable',
        mode: 'enforce',
        enforced: true,
        intended: { verdict: 'allow', decidedBy: null, actions: [] },
        effective: { verdict: 'allow', decidedBy: null, actions: [] },
        ruleCount: 1,
        matched: [],
        errors: [],
        inputs: { 'signals.repeated_prompts': 1 },
      },
    ],
    input: {
      request: { model: 'flowloom-local', job: over.job, key: 'k1' },
      caller: { key_id: 'k1' },
      signals: { repeated_prompts: 1 },
      now: Date.now(),
    },
    ...over,
  });

  it('when a decision event arrives (twice), then it is stored once and shown with every rule and its inputs', async () => {
    const v1 = at<Array<{ version: string; seq: number }>>(
      (await t.call('GET', '/api/v1/policies/guard')).body,
      'versions',
    ).find((v) => v.seq === 1)!.version;
    const record = decision({ job: 'agent-1', version: v1 });
    const event = createEvent(POLICY_DECISION, 'flowloom/gateway', record, 'job/agent-1');
    await t.bus.publish([event]);
    await t.bus.publish([event]);
    const res = await t.call('GET', `/api/v1/decisions/${record.decisionId}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      decisionId: record.decisionId,
      evaluations: [
        {
          rules: [
            { id: 'loop', matched: false, action: 'stop_job', inputs: { 'signals.repeated_prompts': 1 } },
          ],
        },
      ],
    });
    expect(at<string[]>(res.body, 'explanation')[0]).toContain('guard@');
    const listed = await t.call('GET', '/api/v1/decisions?job=agent-1');
    expect(at<unknown[]>(listed.body, 'data')).toHaveLength(1);
    expect((await t.call('GET', `/api/v1/decisions/${uuidv7()}`)).status).toBe(404);
  });

  it('when a candidate is replayed against recorded traffic, then the changed decisions are counted with examples', async () => {
    const v1 = await guardVersion(1);
    const v2 = await guardVersion(2);
    const records = [
      ...Array.from({ length: 12 }, (_, i) => decision({ job: `agent-${i}`, version: v1 })),
      ...Array.from({ length: 18 }, (_, i) => decision({ job: `batch-${i}`, version: v1 })),
    ];
    await t.bus.publish(records.map((r) => createEvent(POLICY_DECISION, 'flowloom/gateway', r)));
    const res = await t.call('POST', '/api/v1/policies/guard/replay', 'alice', {
      version: v2,
      baseline: v1,
      since: '1h',
    });
    expect(res.status, res.text).toBe(200);
    // 31 recorded (one from the previous test): the 13 agent jobs would now be blocked.
    expect(res.body).toMatchObject({
      report: {
        total: 31,
        changed: 13,
        unchanged: 18,
        transitions: [{ from: 'allow', to: 'block', count: 13 }],
      },
      candidate: v2,
      baseline: v1,
    });
    expect(at<string>(res.body, 'text')).toMatch(/replayed 31 decisions: 13 would change/);

    // The version alone names its policy (`flowloom policy replay --version V`).
    const byVersion = await t.call('POST', '/api/v1/replay', 'alice', {
      version: v2.slice(0, 10),
      baseline: v1,
      since: '1h',
    });
    expect(byVersion.status, byVersion.text).toBe(200);
    expect(byVersion.body).toMatchObject({
      name: 'guard',
      report: { total: 31, changed: 13 },
      candidate: v2,
      baseline: v1,
    });
    const unknown = await t.call('POST', '/api/v1/replay', 'alice', { version: 'abcdef01' });
    expect(unknown.status).toBe(404);
    expect(at<string>(unknown.body, 'error.message')).toContain('No policy has a version abcdef01');
    const none = await t.call('POST', '/api/v1/policies/guard/replay', 'alice', {
      version: v2,
      since: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(none.body).toMatchObject({ report: { total: 0 } });
  });

  it('when the candidate reads inputs the recorded decisions lack, then replay says how many and which, in the answer and the text', async () => {
    // guard read only signals when these were recorded: budget and headers were never gathered.
    const reader = `${V1}  - id: broke
    condition: budget.remaining < 1
    action: block
  - id: red-team
    condition: request.headers["x-team"] == "red"
    action: alert
`;
    const pushed = await push(reader, 'alice', 'reads budget and headers');
    expect(pushed.status, pushed.text).toBe(201);
    const res = await t.call('POST', '/api/v1/replay', 'alice', {
      version: at<string>(pushed.body, 'version'),
      since: '1h',
    });
    expect(res.status, res.text).toBe(200);
    const total = at<number>(res.body, 'report.total');
    expect(total).toBeGreaterThanOrEqual(31);
    expect(at<unknown>(res.body, 'report.missingInputs')).toEqual({
      decisions: total,
      paths: [
        { path: 'budget.remaining', decisions: total, readBy: ['candidate'] },
        { path: 'request.headers["x-team"]', decisions: total, readBy: ['candidate'] },
      ],
    });
    expect(at<string>(res.body, 'text')).toContain(
      `incomplete: ${total} of ${total} decisions were recorded without inputs the candidate reads (budget.remaining ${total}, request.headers["x-team"] ${total})`,
    );

    // A candidate reading only what was recorded (signals) has no gap.
    const v2 = await guardVersion(2);
    const complete = await t.call('POST', '/api/v1/replay', 'alice', { version: v2, since: '1h' });
    expect(at<unknown>(complete.body, 'report.missingInputs')).toEqual({ decisions: 0, paths: [] });
    expect(at<string>(complete.body, 'text')).not.toContain('incomplete');
  });

  it('when the window holds more decisions than the limit, then the newest are replayed and the rest counted as left out', async () => {
    const v1 = await guardVersion(1);
    const v2 = await guardVersion(2);
    const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
    // v2 blocks agent jobs: the old ones would change, the newest (batch jobs) would not.
    const old = Array.from({ length: 5 }, (_, i) =>
      decision({ job: `agent-old-${i}`, version: v1, at: minutesAgo(50 - i) }),
    );
    const newest = Array.from({ length: 4 }, (_, i) =>
      decision({ job: `batch-new-${i}`, version: v1, at: new Date(Date.now() + 1_000 + i).toISOString() }),
    );
    await t.bus.publish([...old, ...newest].map((r) => createEvent(POLICY_DECISION, 'flowloom/gateway', r)));
    const all = await t.call('POST', '/api/v1/replay', 'alice', { version: v2, baseline: v1, since: '1h' });
    const inWindow = at<number>(all.body, 'report.total');
    expect(at<number>(all.body, 'leftOut')).toBe(0);

    const res = await t.call('POST', '/api/v1/replay', 'alice', {
      version: v2,
      baseline: v1,
      since: '1h',
      limit: 4,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      report: { total: 4, changed: 0, unchanged: 4 },
      inWindow,
      limit: 4,
      leftOut: inWindow - 4,
    });
    expect(at<string>(res.body, 'text')).toContain(
      `left out: the ${inWindow - 4} oldest of ${inWindow} decisions in the window (the newest 4 were replayed`,
    );
  });

  it('when a job has interventions, then a supervisor pages through them in order, shadow findings included', async () => {
    const intervention = (action: string, enforced: boolean): Intervention => ({
      decisionId: uuidv7(),
      requestId: uuidv7(),
      job: 'agent-77',
      action,
      actions: [action],
      enforced,
      mode: enforced ? 'enforce' : 'shadow',
      policy: 'guard',
      version: 'a'.repeat(64),
      rule: 'loop',
      reason: 'looping',
      signals: { repeated_prompts: 6 },
      thresholds: [{ path: 'signals.repeated_prompts', operator: '>=', value: 5 }],
    });
    const sent = [
      intervention('stop_job', false),
      intervention('stop_job', false),
      intervention('stop_job', true),
    ];
    for (const i of sent)
      await t.bus.publish([createEvent(POLICY_INTERVENTION, 'flowloom/gateway', i, 'job/agent-77')]);
    const first = await t.call('GET', '/api/v1/jobs/agent-77/interventions?limit=2');
    expect(first.status, first.text).toBe(200);
    expect(at<unknown[]>(first.body, 'data').map((d) => at(d, 'enforced'))).toEqual([false, false]);
    const next = at<string>(first.body, 'next');
    expect(next).toBe(sent[1]!.decisionId);
    const rest = await t.call('GET', `/api/v1/jobs/agent-77/interventions?after=${next}`);
    expect(rest.body).toMatchObject({
      data: [{ decisionId: sent[2]!.decisionId, enforced: true }],
      next: null,
    });
    expect(at<string>(rest.body, 'data.0.at')).toMatch(/^\d{4}-/);
  });

  it('when the candidate has post-call rules, then replay evaluates them on the answers recorded with each request', async () => {
    const v1 = await guardVersion(1);
    const pushed = await push(
      `${V1}  - id: long-answer
    condition: response.output_tokens > 100.0
    action: suspend_key
`,
      'alice',
      'suspend keys after long answers',
    );
    expect(pushed.status, pushed.text).toBe(201);
    // A window of its own (ahead of the other tests' decisions).
    const start = Date.now() + 10 * 60_000;
    const when = (k: number) => new Date(start + k).toISOString();
    const answered = (k: number, output: number) => {
      const pre = decision({ job: `answered-${k}`, version: v1, at: when(k), phase: 'pre_call' });
      return { ...pre, input: { ...pre.input, response: { output_tokens: output, status: 'completed' } } };
    };
    const long = answered(1, 150);
    const records: DecisionRecord[] = [
      long,
      // The gateway's own post-call decision of that request: its input is the pre-call one's, so replay skips it.
      {
        ...decision({ job: 'answered-1', version: v1, at: when(2) }),
        phase: 'post_call',
        follows: long.decisionId,
        requestId: long.requestId,
      },
      answered(3, 20),
      // Refused or failed before an answer (a phase is recorded, no answer): nothing to evaluate after it.
      decision({ job: 'refused', version: v1, at: when(4), phase: 'pre_call' }),
      // Recorded before answers were kept: the candidate's post-call rule cannot be judged on it.
      decision({ job: 'old', version: v1, at: when(5) }),
    ];
    await t.bus.publish(records.map((r) => createEvent(POLICY_DECISION, 'flowloom/gateway', r)));
    const res = await t.call('POST', '/api/v1/replay', 'alice', {
      version: at<string>(pushed.body, 'version'),
      baseline: v1,
      since: new Date(start).toISOString(),
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      report: {
        total: 6,
        afterCall: 2,
        changed: 1,
        transitions: [{ phase: 'post_call', from: 'allow', to: 'suspend_key', count: 1 }],
        missingInputs: {
          decisions: 1,
          paths: [{ path: 'response.output_tokens', decisions: 1, readBy: ['candidate'] }],
        },
      },
    });
    // Shown with the rules of its phase only (the version's pre-call rule did not run after the answer).
    const after = await t.call('GET', `/api/v1/decisions/${records[1]?.decisionId}`);
    expect(at<unknown[]>(after.body, 'evaluations.0.rules')).toEqual([]);
    expect(at<string[]>(after.body, 'explanation')[0]).toContain('[enforce] after the answer: allow');
    const text = at<string>(res.body, 'text');
    expect(text).toContain('replayed 6 decisions (2 of them after the answer): 1 would change, 5 unchanged');
    expect(text).toContain('  after the answer: allow -> suspend_key: 1');
    expect(text).toContain(
      'incomplete: 1 of 4 decisions were recorded without inputs the candidate reads (response.output_tokens 1)',
    );
  });
});

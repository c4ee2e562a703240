import {
  createEvent,
  type DecisionRecord,
  type Intervention,
  POLICY_DECISION,
  POLICY_DEPLOYMENT_CHANGED,
  POLICY_INTERVENTION,
  POLICY_VERSION_PUSHED,
  uuidv7,
} from '@flowloom/contracts';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policyAdminClient, type UnaryResult } from './grpc-support.js';
import { at, startTestPolicyService, type TestPolicyService, testSchema } from './support.js';

// The policy service on PostgreSQL with its gRPC server; the admin API over gRPC is checked against
// the same service's HTTP admin API, which it must match.

const V1 = `name: guard
rules:
  - id: loop
    condition: signals.repeated_prompts >= 5
    action: stop_job
`;
const V2 = `${V1}  - id: no-agents
    condition: request.job.startsWith("agent-")
    action: block
    message: agents are paused
`;
const V3 = `${V1}  - id: slow-batches
    condition: request.job.startsWith("batch-")
    action: { type: throttle, delayMs: 100 }
`;

let schema: Awaited<ReturnType<typeof testSchema>>;
let t: TestPolicyService;
let admin: ReturnType<typeof policyAdminClient>;

beforeAll(async () => {
  schema = await testSchema();
  t = await startTestPolicyService(await schema.open(), { grpcPort: 0 });
  admin = policyAdminClient(t.service.grpcAddress!);
});
afterAll(async () => {
  admin?.close();
  await t?.close();
  await schema?.drop();
});

type Message = Record<string, unknown>;

function ok<T>(result: UnaryResult<T>): T {
  if (result.error) throw new Error(`expected an answer, got ${result.error.code}: ${result.error.details}`);
  return result.response!;
}

function failed(result: UnaryResult<unknown>): grpc.ServiceError {
  if (!result.error) throw new Error(`expected a failure, got ${JSON.stringify(result.response)}`);
  return result.error;
}

/** What the service stored and published: the policies over HTTP and the events, to show nothing changed. */
async function state(): Promise<{ policies: unknown; events: string[] }> {
  const policies = (await t.call('GET', '/api/v1/policies')).body;
  const events = (await t.events()).map((e) => e.type);
  return { policies, events };
}

const push = (source: string, owner = 'alice', message = 'change') =>
  admin.call<Message>('pushVersion', { policy: { source, filename: 'guard.yaml' }, message }, owner);

describe('PolicyAdmin over gRPC: credentials', () => {
  it('when a call has no key, then it fails UNAUTHENTICATED; with a non-admin key, PERMISSION_DENIED', async () => {
    const none = failed(await admin.call('listPolicies', {}));
    expect(none.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(none.details).toBe('No API key was given.');
    expect(failed(await admin.call('listPolicies', {}, 'member')).code).toBe(grpc.status.PERMISSION_DENIED);
    expect(failed(await push(V1, 'member')).code).toBe(grpc.status.PERMISSION_DENIED);
    expect(ok(await admin.call<{ policies: unknown[] }>('listPolicies', {}, 'alice')).policies).toEqual([]);
  });

  it('when the bootstrap admin key pushes, then PERMISSION_DENIED says to push with a personal admin key', async () => {
    const refused = failed(await push(V1, 'bootstrap'));
    expect(refused.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(refused.details).toContain('flowloom keys create --name NAME --owner you@example.com --admin');
    expect(ok(await admin.call<{ policies: unknown[] }>('listPolicies', {}, 'alice')).policies).toEqual([]);
  });
});

describe('PolicyAdmin over gRPC: job policies', () => {
  const JOB = `name: nightly-job
rules:
  - id: stop-loops
    condition: signals.repeated_prompts >= 3
    action: stop_job
`;

  it('when a job policy is pushed with job_policy, then the bootstrap key may push it, it is not deployed and the event says so; a reroute is refused', async () => {
    const pushed = ok(
      await admin.call<Message>(
        'pushVersion',
        { policy: { source: JOB, filename: 'job.yaml' }, message: 'job policy', jobPolicy: true },
        'bootstrap',
      ),
    );
    expect(pushed).toMatchObject({ created: true, version: { name: 'nightly-job' } });
    const policy = (await t.call('GET', '/api/v1/policies/nightly-job')).body;
    expect(at(policy, 'deployment')).toBeNull();
    const event = (await t.events()).find(
      (e) => e.type === POLICY_VERSION_PUSHED && (e.data as { name?: string }).name === 'nightly-job',
    );
    expect(event?.data).toMatchObject({ jobPolicy: true });

    const reroute = JOB.replace('action: stop_job', 'action: { type: reroute, model: other }');
    const refused = failed(
      await admin.call(
        'pushVersion',
        { policy: { source: reroute, filename: 'job.yaml' }, jobPolicy: true },
        'alice',
      ),
    );
    expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refused.details).toContain('reroute');
  });
});

describe('PolicyAdmin over gRPC: validate, push, versions, diff', () => {
  let v1: string;
  let v2: string;

  it('when a document is validated, then a valid one is named and an invalid one gets pointed diagnostics', async () => {
    const valid = ok(await admin.call('validate', { source: V1, filename: 'guard.yaml' }, 'alice'));
    expect(valid).toMatchObject({ ok: true, name: 'guard', rules: 1, errors: [] });
    expect(valid.version).toMatch(/^[0-9a-f]{64}$/);

    const broken = V1.replace('action: stop_job', 'action: explode');
    const invalid = ok(await admin.call('validate', { source: broken, filename: 'guard.yaml' }, 'alice'));
    expect(invalid).toMatchObject({ ok: false });
    expect(invalid.errors).toEqual([
      expect.objectContaining({ file: 'guard.yaml', line: 5, path: 'rules[0].action' }),
    ]);
    expect(invalid.message).toContain('guard.yaml:5');
  });

  it('when a policy is pushed, then it is a new version, the same content again is not, and HTTP shows the same', async () => {
    const first = ok(await push(V1, 'alice', 'first guard'));
    expect(first).toMatchObject({
      created: true,
      version: { name: 'guard', seq: 1, author: 'alice', message: 'first guard', previous: '', rules: 1 },
    });
    expect(first.diff).toBeNull();
    v1 = at<string>(first, 'version.version');
    const again = ok(await push(V1, 'bob'));
    expect(again).toMatchObject({ created: false, version: { version: v1, author: 'alice' } });

    const second = ok(await push(V2, 'alice', 'pause agents'));
    expect(second).toMatchObject({
      created: true,
      version: { seq: 2, previous: v1, rules: 2 },
      diff: { added: ['no-agents'], removed: [], changed: [] },
    });
    v2 = at<string>(second, 'version.version');

    const overGrpc = ok(await admin.call<Message>('getPolicy', { name: 'guard' }, 'alice'));
    const overHttp = (await t.call('GET', '/api/v1/policies/guard')).body as Message;
    expect(overGrpc.versions).toEqual(
      (overHttp.versions as Message[]).map((v) => ({
        ...v,
        previous: v.previous ?? '',
        format: '',
        source: '',
        documentJson: '',
      })),
    );
  });

  it('when a version is read, then it comes with its source and document; by a unique prefix too', async () => {
    const version = ok(
      await admin.call<Message>('getVersion', { name: 'guard', version: v2.slice(0, 10) }, 'alice'),
    );
    expect(version).toMatchObject({ version: v2, format: 'yaml', source: V2 });
    expect(JSON.parse(version.documentJson as string)).toMatchObject({
      name: 'guard',
      rules: [{ id: 'loop' }, { id: 'no-agents', action: { type: 'block' } }],
    });
    const missing = failed(await admin.call('getVersion', { name: 'guard', version: 'abcdef0123' }, 'alice'));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
    expect(missing.details).toContain('Policy "guard" has no version abcdef0123');
  });

  it('when versions or a document are diffed, then the text and the structure say what changed', async () => {
    const stored = ok(await admin.call<Message>('diffVersions', { name: 'guard' }, 'alice'));
    expect(stored.text).toContain('no-agents');
    expect(stored.identical).toBe(false);
    expect(JSON.parse(stored.diffJson as string)).toMatchObject({
      from: v1,
      to: v2,
      added: [{ id: 'no-agents' }],
    });

    const document = ok(await admin.call<Message>('diffDocument', { source: V3 }, 'alice'));
    expect(document.against).toBe(v2);
    expect(JSON.parse(document.diffJson as string)).toMatchObject({
      added: [{ id: 'slow-batches' }],
      removed: [{ id: 'no-agents' }],
    });
  });

  it('when the document comes as document_json, then it is read as JSON; malformed JSON is INVALID_ARGUMENT', async () => {
    const doc = { name: 'json-guard', rules: [{ id: 'r', condition: 'true', action: 'block' }] };
    const valid = ok(await admin.call('validate', { documentJson: JSON.stringify(doc) }, 'alice'));
    expect(valid).toMatchObject({ ok: true, name: 'json-guard' });
    const bad = failed(await admin.call('validate', { documentJson: '{"name": ' }, 'alice'));
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^document_json is not JSON/);
  });

  it('when the input is bad, then the call fails INVALID_ARGUMENT with a clear message, and nothing changes', async () => {
    const before = await state();
    const cases: Array<[string, object, RegExp]> = [
      [
        'pushVersion',
        { policy: { source: V1.replace('stop_job', 'explode') } },
        /The policy is invalid and was not stored:[\s\S]*rules\[0\]\.action/,
      ],
      ['pushVersion', {}, /Send the policy as "source"/],
      ['pushVersion', { policy: { source: V3, format: 'xml' } }, /^format: /],
      ['pushVersion', { policy: { source: V3 }, message: 'm'.repeat(2001) }, /^message: /],
      ['getPolicy', {}, /^name: /],
      ['getVersion', { name: 'guard', version: 'abc' }, /^version: /],
      ['promote', { name: 'guard', version: v2, mode: 'everywhere' }, /^mode: /],
      ['promote', { name: 'guard', version: v2, mode: 'canary', percent: 150 }, /^percent: /],
      ['promote', { name: 'guard', version: v2, mode: 'canary' }, /A canary needs a percentage/],
      ['promote', { name: 'guard', version: v2, mode: 'canary', percent: 10, by: 'team' }, /^by: /],
      ['rollback', { name: 'guard', to: 'abc' }, /^to: /],
      ['replay', { version: v2, limit: -1 }, /^limit: /],
      ['replay', { version: v2, since: 'yesterday-ish' }, /is not a duration/],
      ['listInterventions', { job: 'has space' }, /^job: a job id is 1-200 printable ASCII characters/],
    ];
    for (const [method, request, message] of cases) {
      const error = failed(await admin.call(method, request, 'bob'));
      expect(error.code, `${method} ${JSON.stringify(request)}: ${error.details}`).toBe(
        grpc.status.INVALID_ARGUMENT,
      );
      expect(error.details, method).toMatch(message);
    }
    expect(await state()).toEqual(before);
  });
});

describe('PolicyAdmin over gRPC: promotion with approval, rollback', () => {
  const versionOf = async (seq: number): Promise<string> => {
    const policy = ok(
      await admin.call<{ versions: Array<{ seq: number; version: string }> }>(
        'getPolicy',
        { name: 'guard' },
        'alice',
      ),
    );
    return policy.versions.find((v) => v.seq === seq)!.version;
  };

  it('when the author puts a version in shadow, then it applies at once', async () => {
    const v1 = await versionOf(1);
    const shadow = ok(await admin.call('promote', { name: 'guard', version: v1, mode: 'shadow' }, 'alice'));
    expect(shadow).toMatchObject({
      status: 'applied',
      deployment: { stable: '', candidate: { version: v1, mode: 'shadow' }, actor: 'key/alice-key (alice)' },
      promotion: null,
    });
  });

  it('when enforcing needs approval, then the author cannot approve it and another person can', async () => {
    const v1 = await versionOf(1);
    const pending = ok(
      await admin.call<Message>('promote', { name: 'guard', version: v1, mode: 'enforce' }, 'alice'),
    );
    expect(pending).toMatchObject({
      status: 'pending',
      promotion: { version: v1, mode: 'enforce', author: 'alice', status: 'pending' },
    });
    const id = at<string>(pending, 'promotion.id');
    expect(pending.next).toContain(id);

    const own = failed(await admin.call('approvePromotion', { id }, 'alice'));
    expect(own.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(own.details).toContain('cannot approve its promotion; another person must');
    // The bypass: alice's key created a key with another owner; its holder could be alice.
    const sock = failed(await admin.call('approvePromotion', { id }, 'mallory_by_alice'));
    expect(sock.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(sock.details).toContain("descends from the author's key alice-key");
    // The bootstrap key created every key, alice's included.
    const root = failed(await admin.call('approvePromotion', { id }, 'bootstrap'));
    expect(root.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(root.details).toContain('bootstrap admin key');
    expect(ok(await admin.call('getPromotion', { id }, 'alice'))).toMatchObject({ status: 'pending' });

    const approved = ok(await admin.call('approvePromotion', { id }, 'bob'));
    expect(approved).toMatchObject({
      promotion: { id, status: 'applied', approvedBy: 'bob' },
      deployment: { stable: v1, promotionId: id },
    });
    expect(ok(await admin.call('getPromotion', { id }, 'alice'))).toMatchObject({
      status: 'applied',
      approvedBy: 'bob',
      approver: {
        keyId: 'bob-key',
        owner: 'bob',
        root: false,
        lineage: [{ keyId: 'bootstrap-key', owner: 'admin', root: true }],
      },
    });
    expect(failed(await admin.call('getPromotion', { id: uuidv7() }, 'alice')).code).toBe(
      grpc.status.NOT_FOUND,
    );
    // The bundle gateways get now enforces it.
    expect(t.service.distributor.current().policies).toEqual([
      expect.objectContaining({ name: 'guard', stable: expect.objectContaining({ version: v1 }) }),
    ]);
  });

  it('when a canary is asked for, then its share and unit are kept on the promotion', async () => {
    const v2 = await versionOf(2);
    const pending = ok(
      await admin.call(
        'promote',
        { name: 'guard', version: v2, mode: 'canary', percent: 10, by: 'key' },
        'alice',
      ),
    );
    expect(pending).toMatchObject({
      status: 'pending',
      promotion: { mode: 'canary', percent: 10, by: 'key' },
    });
  });

  it('when rollback names a version never enforced, then it fails (a conflict) and nothing changes; a plain rollback puts back the previous deployment', async () => {
    const v2 = await versionOf(2);
    const before = await state();
    const refused = failed(await admin.call('rollback', { name: 'guard', to: v2 }, 'alice'));
    expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(refused.details).toContain('was never enforced, so it cannot be a rollback target');
    expect(await state()).toEqual(before);

    const rolledBack = ok(await admin.call<Message>('rollback', { name: 'guard' }, 'alice'));
    expect(rolledBack).toMatchObject({ deployment: { stable: '', candidate: { mode: 'shadow' } } });
    expect(at<string>(rolledBack, 'deployment.reason')).toMatch(/^rollback to revision/);
    const types = (await t.events()).map((e) => e.type);
    expect(types.filter((type) => type === POLICY_DEPLOYMENT_CHANGED).length).toBeGreaterThanOrEqual(3);
    expect(types).toContain(POLICY_VERSION_PUSHED);
    expect(failed(await admin.call('rollback', { name: 'nothing-here' }, 'alice')).code).toBe(
      grpc.status.NOT_FOUND,
    );
  });
});

describe('PolicyAdmin over gRPC: decisions, interventions and replay', () => {
  const decision = (job: string, version: string): DecisionRecord => ({
    decisionId: uuidv7(),
    requestId: uuidv7(),
    at: new Date().toISOString(),
    keyId: 'k1',
    job,
    verdict: 'allow',
    actions: [],
    intendedVerdict: 'allow',
    intendedActions: [],
    enforced: true,
    policy: 'guard',
    version,
    mode: 'enforce',
    rule: null,
    evaluationMicros: 3.1,
    evaluations: [
      {
        policy: 'guard',
        version,
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
      request: { model: 'flowloom-local', job, key: 'k1' },
      caller: { key_id: 'k1' },
      signals: { repeated_prompts: 1 },
      now: Date.now(),
    },
  });
  let v1: string;
  let v2: string;
  let first: DecisionRecord;

  beforeAll(async () => {
    const policy = ok(
      await admin.call<{ versions: Array<{ seq: number; version: string }> }>(
        'getPolicy',
        { name: 'guard' },
        'alice',
      ),
    );
    v1 = policy.versions.find((v) => v.seq === 1)!.version;
    v2 = policy.versions.find((v) => v.seq === 2)!.version;
    const records = [
      ...Array.from({ length: 3 }, (_, i) => decision(`agent-${i}`, v1)),
      ...Array.from({ length: 4 }, (_, i) => decision(`batch-${i}`, v1)),
    ];
    first = records[0]!;
    await t.bus.publish(records.map((r) => createEvent(POLICY_DECISION, 'flowloom/gateway', r)));
  });

  it('when a decision is read, then it comes with its explanation and the record HTTP shows', async () => {
    const answer = ok(await admin.call<Message>('getDecision', { id: first.decisionId }, 'alice'));
    expect(answer).toMatchObject({
      decisionId: first.decisionId,
      requestId: first.requestId,
      verdict: 'allow',
      intendedVerdict: 'allow',
      enforced: true,
      policy: 'guard',
      version: v1,
      rule: '',
      keyId: 'k1',
      job: 'agent-0',
    });
    expect((answer.explanation as string[])[0]).toContain('guard@');
    const overHttp = (await t.call('GET', `/api/v1/decisions/${first.decisionId}`)).body;
    expect(JSON.parse(answer.decisionJson as string)).toEqual(overHttp);

    const missing = failed(await admin.call('getDecision', { id: uuidv7() }, 'alice'));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
    expect(missing.details).toContain('Decisions appear here a moment after the request');
  });

  it('when decisions are listed, then filters and the limit apply, without inputs', async () => {
    const agents = ok(
      await admin.call<{ decisions: Message[] }>('listDecisions', { job: 'agent-1' }, 'alice'),
    );
    expect(agents.decisions.map((d) => d.job)).toEqual(['agent-1']);
    expect(JSON.parse(agents.decisions[0]!.decisionJson as string)).not.toHaveProperty('input');
    const two = ok(
      await admin.call<{ decisions: Message[] }>('listDecisions', { limit: 2, since: '1h' }, 'alice'),
    );
    expect(two.decisions).toHaveLength(2);
  });

  it('when a candidate is replayed, then the changed decisions are counted, by name or by the version alone', async () => {
    const named = ok(
      await admin.call<Message>('replay', { name: 'guard', version: v2, baseline: v1, since: '1h' }, 'alice'),
    );
    expect(named).toMatchObject({
      name: 'guard',
      candidate: v2,
      baseline: v1,
      total: 7,
      changed: 3,
      leftOut: 0,
      withoutInput: 0,
    });
    expect(named.text).toMatch(/replayed 7 decisions: 3 would change/);
    expect(JSON.parse(named.reportJson as string)).toMatchObject({
      transitions: [{ from: 'allow', to: 'block', count: 3 }],
    });
    const byVersion = ok(
      await admin.call<Message>(
        'replay',
        { version: v2.slice(0, 10), baseline: v1, since: '1h', examples: 0 },
        'alice',
      ),
    );
    expect(byVersion).toMatchObject({ name: 'guard', candidate: v2, changed: 3 });
    expect(JSON.parse(byVersion.reportJson as string)).toMatchObject({ transitions: [{ examples: [] }] });
    const unknown = failed(await admin.call('replay', { version: 'abcdef01' }, 'alice'));
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
  });

  it('when a job has interventions, then they are paged in order', async () => {
    const intervention = (enforced: boolean): Intervention => ({
      decisionId: uuidv7(),
      requestId: uuidv7(),
      job: 'agent-9',
      action: 'stop_job',
      actions: ['stop_job'],
      enforced,
      mode: enforced ? 'enforce' : 'shadow',
      policy: 'guard',
      version: v1,
      rule: 'loop',
      reason: 'looping',
      signals: { repeated_prompts: 6 },
    });
    const sent = [intervention(false), intervention(true)];
    for (const i of sent)
      await t.bus.publish([createEvent(POLICY_INTERVENTION, 'flowloom/gateway', i, 'job/agent-9')]);
    const page = ok(
      await admin.call<{ interventions: Message[]; next: string }>(
        'listInterventions',
        { job: 'agent-9', limit: 1 },
        'alice',
      ),
    );
    expect(page.interventions).toEqual([
      expect.objectContaining({
        decisionId: sent[0]!.decisionId,
        enforced: false,
        action: 'stop_job',
        rule: 'loop',
        reason: 'looping',
      }),
    ]);
    expect(page.next).toBe(sent[0]!.decisionId);
    const rest = ok(
      await admin.call<{ interventions: Message[]; next: string }>(
        'listInterventions',
        { job: 'agent-9', after: page.next },
        'alice',
      ),
    );
    expect(rest.interventions.map((i) => i.decisionId)).toEqual([sent[1]!.decisionId]);
    expect(rest.next).toBe('');
    expect(JSON.parse(rest.interventions[0]!.interventionJson as string)).toMatchObject({
      signals: { repeated_prompts: 6 },
    });
  });
});

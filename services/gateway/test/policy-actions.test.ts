import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import {
  eventsOf,
  expectAnthropicError,
  expectOpenAIError,
  KEY_CHANGED,
  REQUEST_FAILED,
} from './http-helpers.js';
import {
  chat,
  DECISION,
  decisionOf,
  eventsOfType,
  INTERVENTION,
  JOB_CHANGED,
  type PolicyGateway,
  startPolicyGateway,
  testPostgres,
} from './policy-helpers.js';

const POLICY = `
name: actions
description: one rule per action, each keyed on its own job or header
rules:
  - id: forbidden-project
    condition: request.project == "forbidden"
    action: block
    message: project forbidden may not call models
  - id: looping-agent
    condition: '"x-agent-state" in request.headers && request.headers["x-agent-state"] == "looping"'
    action: stop_job
    message: the agent kept looping
  - id: abuser
    condition: request.job == "abuse"
    action: suspend_key
  - id: slow-down
    condition: request.job == "slow"
    action: { type: throttle, delayMs: 300 }
  - id: one-at-a-time
    condition: request.job == "queued"
    action: { type: throttle, queue: true, maxWaitMs: 5000 }
  - id: cheaper
    condition: request.model == "premium"
    action: { type: reroute, model: budget }
  - id: in-eu
    condition: request.job == "resident"
    action: { type: reroute, region: eu }
  - id: mask-pii
    condition: request.job == "pii"
    action: { type: redact, patterns: [email, credit_card] }
  - id: short-answers
    condition: request.job == "capped"
    action: { type: cap_max_tokens, value: 5 }
  - id: watch
    condition: request.job == "watched"
    action: { type: alert, channel: ops }
  - id: fragile
    condition: request.job == "fragile" && request.headers["x-tier"] == "gold"
    action: block
  - id: lenient
    condition: request.job == "lenient" && request.headers["x-tier"] == "gold"
    action: block
    onError: open
`;

const MODELS = {
  models: {
    premium: { deployments: [{ provider: 'local', model: 'flowloom-local', region: 'us' }] },
    budget: { deployments: [{ provider: 'local', model: 'flowloom-local', region: 'cheap' }] },
    spread: {
      deployments: [
        { provider: 'local', model: 'flowloom-local', region: 'us' },
        { provider: 'local', model: 'flowloom-local', region: 'eu' },
      ],
    },
  },
};

let pg: TestDatabase;
let t: PolicyGateway;
let key: string;

beforeAll(async () => {
  pg = await testPostgres();
  t = await startPolicyGateway(POLICY, { overrides: MODELS, db: pg.db });
  key = (await t.createKey({ name: 'member' })).key;
});
afterAll(async () => {
  await t?.close();
  await pg?.drop();
});

const job = (name: string): Record<string, string> => ({ 'x-flowloom-job': name });

describe('block', () => {
  it('when a rule blocks, then the OpenAI caller reads the policy, version, rule and reason, and the decision is findable', async () => {
    const res = await t.post('/v1/chat/completions', chat('hello'), key, {
      'x-flowloom-project': 'forbidden',
    });
    const error = expectOpenAIError(res, 403, 'policy_blocked');
    const decisionId = res.headers.get('x-flowloom-decision');
    expect(error.message).toMatch(/policy "actions" \(version [0-9a-f]{12}, rule "forbidden-project"\)/);
    expect(error.message).toContain('project forbidden may not call models');
    expect(error.message).toContain(`Decision ${decisionId}`);

    const decision = await decisionOf(t, decisionId);
    expect(decision).toMatchObject({
      requestId: res.headers.get('x-request-id'),
      policy: 'actions',
      mode: 'enforce',
      rule: 'forbidden-project',
      verdict: 'block',
      intendedVerdict: 'block',
      enforced: true,
      project: 'forbidden',
    });
    const [evaluation] = decision.evaluations as Array<Record<string, unknown>>;
    expect(evaluation).toMatchObject({ ruleCount: 12, matched: ['forbidden-project'], role: 'stable' });
    expect((evaluation!.inputs as Record<string, unknown>)['request.project']).toBe('forbidden');
    expect(decision.evaluationMicros).toBeGreaterThan(0);

    const failed = (await eventsOfType(t, REQUEST_FAILED)).find(
      (e) => e.data.requestId === decision.requestId,
    );
    expect(failed?.data).toMatchObject({ errorCode: 'policy_blocked', httpStatus: 403, decisionId });
    const intervention = (await eventsOfType(t, INTERVENTION)).find((e) => e.data.decisionId === decisionId);
    expect(intervention?.data).toMatchObject({ action: 'block', enforced: true, rule: 'forbidden-project' });
  });

  it('when a rule blocks an Anthropic or Gemini caller, then each reads why in its own format', async () => {
    const headers = { 'x-flowloom-project': 'forbidden' };
    const anthropic = await t.post('/v1/messages', { ...chat('hi'), max_tokens: 20 }, key, headers);
    expect(expectAnthropicError(anthropic, 403, 'permission_error').message).toContain(
      'rule "forbidden-project"',
    );
    expect(anthropic.headers.get('x-flowloom-decision')).toBeTruthy();
    const gemini = await t.post(
      '/v1beta/models/flowloom-local:generateContent',
      { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
      key,
      headers,
    );
    expect(gemini.status).toBe(403);
    expect(gemini.body).toMatchObject({ error: { status: 'PERMISSION_DENIED' } });
    expect((gemini.body as { error: { message: string } }).error.message).toContain(
      'rule "forbidden-project"',
    );
    const embeddings = await t.post(
      '/v1/embeddings',
      { model: 'flowloom-local-embedding', input: 'x' },
      key,
      headers,
    );
    expectOpenAIError(embeddings, 403, 'policy_blocked');
  });

  it('when no rule matches, then the request passes and still carries its decision', async () => {
    const res = await t.post('/v1/chat/completions', chat('hello'), key);
    expect(res.status, res.text).toBe(200);
    const decision = await decisionOf(t, res.headers.get('x-flowloom-decision'));
    expect(decision).toMatchObject({ verdict: 'allow', intendedVerdict: 'allow', enforced: true });
    expect((decision.evaluations as Array<{ matched: string[] }>)[0]!.matched).toEqual([]);
    expect((decision.input as { request: Record<string, unknown> }).request).toMatchObject({
      model: 'flowloom-local',
      provider: 'local',
    });
  });
});

describe('stop_job and suspend_key', () => {
  it('when a job is stopped, then its later requests are refused until an admin clears it, and a supervisor sees why', async () => {
    const looping = { ...job('agent-7'), 'x-agent-state': 'looping' };
    const first = await t.post('/v1/chat/completions', chat('step'), key, looping);
    const stopMessage = expectOpenAIError(first, 403, 'policy_blocked').message;
    expect(stopMessage).toContain('Job "agent-7" is stopped');
    const stoppingDecision = first.headers.get('x-flowloom-decision');

    const later = await t.post('/v1/chat/completions', chat('step'), key, job('agent-7'));
    const laterMessage = expectOpenAIError(later, 403, 'policy_blocked').message;
    expect(laterMessage).toMatch(
      /Job "agent-7" was stopped at .* by policy "actions" .*rule "looping-agent"/,
    );
    expect(laterMessage).toContain('POST /api/v1/jobs/agent-7/clear');
    const refusal = await decisionOf(t, later.headers.get('x-flowloom-decision'));
    expect(refusal).toMatchObject({ verdict: 'stop_job', stoppedBy: stoppingDecision, job: 'agent-7' });

    const status = await t.get('/api/v1/jobs/agent-7', t.adminKey);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({
      job: 'agent-7',
      status: 'stopped',
      reason: 'the agent kept looping',
      stoppedBy: { decisionId: stoppingDecision, policy: 'actions', rule: 'looping-agent' },
    });
    expect((await t.get('/api/v1/jobs/agent-7', key)).status).toBe(403);

    const stopped = (await eventsOfType(t, JOB_CHANGED)).find((e) => e.data.job === 'agent-7');
    expect(stopped?.data).toMatchObject({ status: 'stopped', decisionId: stoppingDecision });
    const intervention = (await eventsOfType(t, INTERVENTION)).find(
      (e) => e.data.decisionId === stoppingDecision,
    );
    expect(intervention?.data).toMatchObject({ action: 'stop_job', job: 'agent-7', enforced: true });

    const cleared = await t.post('/api/v1/jobs/agent-7/clear', {}, t.adminKey);
    expect(cleared.status, cleared.text).toBe(200);
    expect((await t.post('/v1/chat/completions', chat('step'), key, job('agent-7'))).status).toBe(200);
    expect((await t.get('/api/v1/jobs/agent-7', t.adminKey)).body).toMatchObject({ status: 'running' });
    expect((await t.post('/api/v1/jobs/agent-7/clear', {}, t.adminKey)).status).toBe(404);
  });

  it('when an admin stops a job by hand, then its requests are refused with the admin as the reason', async () => {
    const stop = await t.post('/api/v1/jobs/manual-1/stop', { reason: 'budget review' }, t.adminKey);
    expect(stop.status, stop.text).toBe(200);
    const res = await t.post('/v1/chat/completions', chat('x'), key, job('manual-1'));
    expect(expectOpenAIError(res, 403, 'policy_blocked').message).toContain('budget review');
    await t.post('/api/v1/jobs/manual-1/clear', {}, t.adminKey);
  });

  it('when a rule suspends the key, then its requests get 403 naming the decision until an admin resumes it, and both are key events', async () => {
    const abuser = await t.createKey({ name: 'abuser' });
    const res = await t.post('/v1/chat/completions', chat('x'), abuser.key, job('abuse'));
    const suspendMessage = expectOpenAIError(res, 403, 'policy_blocked').message;
    expect(suspendMessage).toContain(
      `is suspended until an admin resumes it (POST /api/v1/keys/${abuser.id}/resume`,
    );
    const decision = res.headers.get('x-flowloom-decision');

    // Suspended, not revoked: refused in the caller's format, naming the decision and the way back.
    const next = await t.post('/v1/chat/completions', chat('x'), abuser.key);
    const nextMessage = expectOpenAIError(next, 403, 'key_suspended').message;
    expect(nextMessage).toContain(`suspended by decision ${decision}`);
    expect(nextMessage).toContain(`flowloom keys resume ${abuser.id}`);
    const anthropic = await t.post(
      '/v1/messages',
      { model: 'flowloom-local', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] },
      abuser.key,
    );
    expect(expectAnthropicError(anthropic, 403, 'permission_error').message).toContain(
      `suspended by decision ${decision}`,
    );
    const shown = await t.get(`/api/v1/keys/${abuser.id}`, t.adminKey);
    expect(shown.body).toMatchObject({
      status: 'suspended',
      revokedAt: null,
      suspension: { decisionId: decision, policy: 'actions', rule: 'abuser' },
    });
    const listed = (await t.get('/api/v1/keys', t.adminKey)).body as {
      data: Array<{ id: string; status: string }>;
    };
    expect(listed.data.find((k) => k.id === abuser.id)?.status).toBe('suspended');
    const suspended = (await eventsOfType(t, KEY_CHANGED)).find(
      (e) => e.data.keyId === abuser.id && e.data.action === 'suspended',
    );
    expect(String(suspended?.data.actor)).toMatch(/^policy\/actions@[0-9a-f]{12} rule abuser$/);
    expect(suspended?.data).toMatchObject({ decisionId: decision, policy: 'actions', rule: 'abuser' });

    const resumed = await t.post(`/api/v1/keys/${abuser.id}/resume`, {}, t.adminKey);
    expect(resumed.status, resumed.text).toBe(200);
    expect(resumed.body).toMatchObject({ status: 'active', suspendedAt: null, suspension: null });
    expect((await t.post('/v1/chat/completions', chat('x'), abuser.key)).status).toBe(200);
    const resumedEvent = (await eventsOfType(t, KEY_CHANGED)).find(
      (e) => e.data.keyId === abuser.id && e.data.action === 'resumed',
    );
    expect(String(resumedEvent?.data.actor)).toMatch(/^key\/[0-9a-f-]{36} \(/);
    expect(resumedEvent?.data).toMatchObject({ decisionId: decision });
    expectOpenAIError(await t.post(`/api/v1/keys/${abuser.id}/resume`, {}, t.adminKey), 409, 'conflict');
    expect((await t.post(`/api/v1/keys/${abuser.id}/resume`, {}, abuser.key)).status).toBe(403);
  });

  it('when a rule would suspend an admin key, then only the request is refused', async () => {
    const res = await t.post('/v1/chat/completions', chat('x'), t.adminKey, job('abuse'));
    expect(expectOpenAIError(res, 403, 'policy_blocked').message).toContain('Admin keys are never suspended');
    expect((await t.post('/v1/chat/completions', chat('x'), t.adminKey)).status).toBe(200);
  });
});

describe('throttle, reroute, redact, cap, alert', () => {
  it('when a rule throttles with a delay, then the answer comes after it', async () => {
    const started = performance.now();
    const res = await t.post('/v1/chat/completions', chat('x'), key, job('slow'));
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('when a rule throttles by queueing, then concurrent requests of the job run one at a time', async () => {
    const started = performance.now();
    const results = await Promise.all(
      [1, 2, 3].map((i) =>
        t.post('/v1/chat/completions', chat(`q${i}`, { delayMs: 150 }), key, job('queued')),
      ),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(440);
  });

  it('when a rule reroutes to another model or region, then another deployment answers', async () => {
    const cheaper = await t.post('/v1/chat/completions', { ...chat('x'), model: 'premium' }, key);
    expect(cheaper.status, cheaper.text).toBe(200);
    expect(cheaper.headers.get('x-flowloom-deployment')).toBe('local/flowloom-local@cheap');
    for (let i = 0; i < 4; i++) {
      const eu = await t.post(
        '/v1/chat/completions',
        { ...chat('x'), model: 'spread' },
        key,
        job('resident'),
      );
      expect(eu.headers.get('x-flowloom-deployment')).toBe('local/flowloom-local@eu');
    }
    const decision = await decisionOf(t, cheaper.headers.get('x-flowloom-decision'));
    expect(decision.actions).toEqual([
      { ruleId: 'cheaper', policy: 'actions', action: { type: 'reroute', model: 'budget' } },
    ]);
  });

  it('when a rule redacts, then the provider never sees the matches and the decision counts them', async () => {
    const res = await t.post(
      '/v1/chat/completions',
      chat('mail jane.doe@example.com card 4111 1111 1111 1111 please'),
      key,
      job('pii'),
    );
    expect(res.status).toBe(200);
    const reply = (res.body as { choices: Array<{ message: { content: string } }> }).choices[0]!.message
      .content;
    expect(reply).not.toContain('jane.doe@example.com');
    expect(reply).not.toContain('4111');
    expect(reply).toContain('[REDACTED]');
    expect(await decisionOf(t, res.headers.get('x-flowloom-decision'))).toMatchObject({ redactions: 2 });
  });

  it('when a rule caps max_tokens, then the answer stops at the cap', async () => {
    const res = await t.post(
      '/v1/chat/completions',
      chat('write a long story', {}, { max_tokens: 100 }),
      key,
      job('capped'),
    );
    expect(res.status).toBe(200);
    const body = res.body as {
      usage: { completion_tokens: number };
      choices: Array<{ finish_reason: string }>;
    };
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(5);
    expect(body.choices[0]!.finish_reason).toBe('length');
  });

  it('when a rule alerts, then the request passes and an intervention event names the channel', async () => {
    const res = await t.post('/v1/chat/completions', chat('x'), key, job('watched'));
    expect(res.status).toBe(200);
    const id = res.headers.get('x-flowloom-decision');
    const alert = (await eventsOfType(t, INTERVENTION)).find((e) => e.data.decisionId === id);
    expect(alert?.data).toMatchObject({ action: 'alert', channel: 'ops', enforced: true, job: 'watched' });
  });

  it('when a streamed request is decided, then the SSE response carries the decision and the decision is recorded', async () => {
    const res = await t.post('/v1/chat/completions', chat('x', {}, { stream: true }), key, job('watched'));
    expect(res.status).toBe(200);
    expect(res.text).toContain('data: [DONE]');
    const decision = await decisionOf(t, res.headers.get('x-flowloom-decision'));
    expect(decision.actions).toEqual([
      { ruleId: 'watch', policy: 'actions', action: { type: 'alert', channel: 'ops' } },
    ]);
  });
});

describe('onError', () => {
  it('when a block rule fails to evaluate, then it fails closed by default and the failure is recorded', async () => {
    const res = await t.post('/v1/chat/completions', chat('x'), key, job('fragile'));
    expectOpenAIError(res, 403, 'policy_blocked');
    const decision = await decisionOf(t, res.headers.get('x-flowloom-decision'));
    const [evaluation] = decision.evaluations as Array<{ errors: Array<Record<string, unknown>> }>;
    expect(evaluation!.errors).toEqual([
      expect.objectContaining({ ruleId: 'fragile', onError: 'closed', treatedAs: 'match' }),
    ]);
  });

  it('when a rule with onError open fails, then the request passes and the failure is recorded', async () => {
    const res = await t.post('/v1/chat/completions', chat('x'), key, job('lenient'));
    expect(res.status).toBe(200);
    const decision = await decisionOf(t, res.headers.get('x-flowloom-decision'));
    const [evaluation] = decision.evaluations as Array<{ errors: Array<Record<string, unknown>> }>;
    expect(evaluation!.errors).toEqual([
      expect.objectContaining({ ruleId: 'lenient', onError: 'open', treatedAs: 'no_match' }),
    ]);
  });
});

describe('decision records', () => {
  it('when decisions are recorded, then each one is an event whose payload the contract schema accepts', async () => {
    const { decisionRecordSchema, interventionSchema } = await import('@flowloom/contracts');
    const events = await eventsOf(t);
    const decisions = events.filter((e) => e.type === DECISION);
    expect(decisions.length).toBeGreaterThan(10);
    for (const e of decisions) expect(decisionRecordSchema.safeParse(e.data).success).toBe(true);
    for (const e of events.filter((x) => x.type === INTERVENTION))
      expect(interventionSchema.safeParse(e.data).success).toBe(true);
    // Credentials never enter a record.
    expect(JSON.stringify(decisions)).not.toContain(key);
    expect(JSON.stringify(decisions)).not.toContain('authorization');
  });
});

import {
  createEvent,
  type DecisionRecord,
  GATEWAY_REQUEST_COMPLETED,
  GATEWAY_REQUEST_FAILED,
  POLICY_DECISION,
  type RequestCompleted,
  type RequestFailed,
  uuidv7,
} from '@flowloom/contracts';
import type { Db } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at, openTestEngine, startTestPolicyService, type TestPolicyService } from './support.js';

// Replay when no policy was active: no decision was recorded, so the traffic is the gateways'
// request events, rebuilt into what a policy would have read; what they cannot tell is reported missing.

const CANDIDATE = `name: premium-guard
rules:
  - id: no-big-model
    condition: request.model == "big"
    action: block
  - id: red-team
    condition: request.headers["x-team"] == "red"
    action: alert
`;

const context = (requestId: string, model: string) => ({
  requestId,
  keyId: 'k1',
  owner: 'alice',
  job: 'nightly',
  api: 'openai',
  operation: 'chat' as const,
  model,
  stream: false,
  latencyMs: 5,
  attempts: 1,
});

const completed = (requestId: string, model: string) =>
  createEvent<RequestCompleted>(
    GATEWAY_REQUEST_COMPLETED,
    'flowloom/gateway',
    {
      ...context(requestId, model),
      provider: 'local',
      deployment: 'local/flowloom-local',
      providerModel: 'flowloom-local',
      usage: { inputTokens: 10, outputTokens: 4, cachedInputTokens: 0 },
      costUsd: 0,
      finishReason: 'stop',
    },
    'job/nightly',
  );

const failed = (requestId: string, model: string) =>
  createEvent<RequestFailed>(
    GATEWAY_REQUEST_FAILED,
    'flowloom/gateway',
    { ...context(requestId, model), errorCode: 'upstream_error', errorMessage: 'down', httpStatus: 502 },
    'job/nightly',
  );

/** A request a policy did decide on (its decision is the traffic; its request event is not counted again). */
function decided(requestId: string): DecisionRecord {
  return {
    decisionId: uuidv7(),
    requestId,
    at: new Date().toISOString(),
    keyId: 'k1',
    job: 'nightly',
    verdict: 'allow',
    actions: [],
    intendedVerdict: 'allow',
    intendedActions: [],
    enforced: true,
    evaluationMicros: 1,
    evaluations: [],
    input: {
      request: { model: 'big', key: 'k1', job: 'nightly' },
      caller: { key_id: 'k1' },
      now: Date.now(),
    },
  };
}

describe.each(['postgres', 'pglite'] as const)('replay from request events (%s)', (engine) => {
  let engineDb: Awaited<ReturnType<typeof openTestEngine>> | undefined;
  let db: Db;
  let t: TestPolicyService;

  beforeAll(async () => {
    engineDb = await openTestEngine(engine);
    db = engineDb.db;
    t = await startTestPolicyService(db);
  });
  afterAll(async () => {
    await t?.close();
    await engineDb?.close();
  });

  it('when no decision was recorded for requests, then replay evaluates their request events and names what they lack', async () => {
    const decidedId = uuidv7();
    await t.bus.publish([
      completed(uuidv7(), 'big'),
      completed(uuidv7(), 'big'),
      completed(uuidv7(), 'small'),
      failed(uuidv7(), 'small'),
      createEvent(POLICY_DECISION, 'flowloom/gateway', decided(decidedId), 'job/nightly'),
      completed(decidedId, 'big'),
    ]);
    // Redelivered: stored once.
    const again = completed(uuidv7(), 'small');
    await t.bus.publish([again]);
    await t.bus.publish([again]);

    const pushed = await t.call('POST', '/api/v1/policies', 'alice', {
      source: CANDIDATE,
      message: 'candidate',
    });
    expect(pushed.status, pushed.text).toBe(201);
    const res = await t.call('POST', '/api/v1/replay', 'alice', {
      version: at<string>(pushed.body, 'version'),
      since: '1h',
    });
    expect(res.status, res.text).toBe(200);
    // 5 requests known only by their events, 1 by its decision (whose event is not counted twice).
    expect(res.body).toMatchObject({ inWindow: 6, fromRequestEvents: 5, leftOut: 0 });
    const report = at<{
      total: number;
      changed: number;
      transitions: Array<{ from: string; to: string; count: number }>;
      missingInputs: {
        decisions: number;
        paths: Array<{ path: string; decisions: number; readBy: string[] }>;
      };
    }>(res.body, 'report');
    expect(report.total).toBe(6);
    // Baseline: nothing deployed, an empty policy. The two big-model requests and the decided one change.
    expect(report.transitions).toEqual([expect.objectContaining({ from: 'allow', to: 'block', count: 3 })]);
    expect(report.missingInputs).toEqual({
      decisions: 6,
      paths: [{ path: 'request.headers["x-team"]', decisions: 6, readBy: ['candidate'] }],
    });
    const text = at<string>(res.body, 'text');
    expect(text).toContain('from request events: 5 requests had no recorded decision');
    expect(text).toContain('request.headers');
  });

  it('when the candidate reads only what request events tell, then none of them lacks an input', async () => {
    const pushed = await t.call('POST', '/api/v1/policies', 'alice', {
      source:
        'name: models-only\nrules:\n  - id: no-big\n    condition: request.model == "big" && response.output_tokens > 1\n    action: suspend_key\n',
      message: 'reads the model and the answer',
    });
    expect(pushed.status, pushed.text).toBe(201);
    const res = await t.call('POST', '/api/v1/replay', 'alice', {
      version: at<string>(pushed.body, 'version'),
      since: '1h',
    });
    expect(res.status, res.text).toBe(200);
    // Only the decision recorded without its answer lacks something: the request events carry theirs.
    expect(at<unknown>(res.body, 'report.missingInputs')).toEqual({
      decisions: 1,
      paths: [{ path: 'response.output_tokens', decisions: 1, readBy: ['candidate'] }],
    });
    // Post-call: replayed on the answers the events carry (two big-model requests were answered).
    expect(at<number>(res.body, 'report.candidate.afterCall.suspend_key')).toBe(2);
  });
});

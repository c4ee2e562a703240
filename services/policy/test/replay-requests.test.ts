import { createEvent, POLICY_DECISION, uuidv7 } from '@flowloom/contracts';
import { describe, expect, it } from 'vitest';
import { at, policyServiceOn } from './support.js';
import { allowDecision, completedEvent, failedEvent } from './traffic.js';

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

describe.each(['postgres', 'pglite'] as const)('replay from request events (%s)', (engine) => {
  const started = policyServiceOn(engine);

  it('when no decision was recorded for requests, then replay evaluates their request events and names what they lack', async () => {
    const decidedId = uuidv7();
    const decision = allowDecision(decidedId, 'big');
    // The gateway's event of a request a policy decided on names that decision.
    const decided = completedEvent(decidedId, 'big');
    decided.data.decisionId = decision.decisionId;
    await started.t.bus.publish([
      completedEvent(uuidv7(), 'big'),
      completedEvent(uuidv7(), 'big'),
      completedEvent(uuidv7(), 'small'),
      failedEvent(uuidv7(), 'small'),
      createEvent(POLICY_DECISION, 'flowloom/gateway', decision, 'job/nightly'),
      decided,
    ]);
    // Redelivered: stored once.
    const again = completedEvent(uuidv7(), 'small');
    await started.t.bus.publish([again]);
    await started.t.bus.publish([again]);

    const pushed = await started.t.call('POST', '/api/v1/policies', 'alice', {
      source: CANDIDATE,
      message: 'candidate',
    });
    expect(pushed.status, pushed.text).toBe(201);
    const res = await started.t.call('POST', '/api/v1/replay', 'alice', {
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
    // The decided request's event is not kept as traffic of its own: its decision holds the facts.
    const kept = await started.db.query<{ request_id: string }>('select request_id from policy_requests');
    expect(kept.rows).toHaveLength(5);
    expect(kept.rows.map((r) => r.request_id)).not.toContain(decidedId);
  });

  it('when the candidate reads only what request events tell, then none of them lacks an input', async () => {
    const pushed = await started.t.call('POST', '/api/v1/policies', 'alice', {
      source:
        'name: models-only\nrules:\n  - id: no-big\n    condition: request.model == "big" && response.output_tokens > 1\n    action: suspend_key\n',
      message: 'reads the model and the answer',
    });
    expect(pushed.status, pushed.text).toBe(201);
    const res = await started.t.call('POST', '/api/v1/replay', 'alice', {
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

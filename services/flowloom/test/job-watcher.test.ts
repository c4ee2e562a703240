import { InProcessBus } from '@flowloom/bus';
import {
  createEvent,
  type DecisionRecord,
  type Intervention,
  POLICY_DECISION,
  POLICY_INTERVENTION,
  POLICY_JOB_CHANGED,
} from '@flowloom/contracts';
import { describe, expect, it } from 'vitest';
import { ApiJobWatcher } from '../src/run/api-job-watcher.js';
import { BusJobWatcher } from '../src/run/bus-job-watcher.js';
import {
  actionDetail,
  findingOf,
  findingOfDecision,
  findingOfRefusal,
  findingOfStop,
  type JobObservation,
} from '../src/run/job-watcher.js';
import { PlatformApi } from '../src/run/platform-api.js';

const VERSION = 'ab'.repeat(32);
const DECISION_ID = '01a20128-12e5-7000-a642-d0d080df8d51';

function intervention(extra: Partial<Intervention> = {}): Intervention {
  return {
    decisionId: DECISION_ID,
    requestId: 'req-1',
    job: 'job-1',
    action: 'throttle',
    actions: ['throttle'],
    enforced: true,
    mode: 'enforce',
    policy: 'runaway-guard',
    version: VERSION,
    rule: 'burst',
    reason: 'too many requests',
    signals: { requests_per_minute: 12 },
    thresholds: [{ path: 'signals.requests_per_minute', operator: '>=', value: 10 }],
    ...extra,
  };
}

function decision(extra: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    decisionId: DECISION_ID,
    requestId: 'req-1',
    at: new Date().toISOString(),
    job: 'job-1',
    verdict: 'throttle',
    actions: [{ ruleId: 'burst', policy: 'runaway-guard', action: { type: 'throttle', delayMs: 300 } }],
    intendedVerdict: 'throttle',
    intendedActions: [
      { ruleId: 'burst', policy: 'runaway-guard', action: { type: 'throttle', delayMs: 300 } },
    ],
    enforced: true,
    evaluations: [],
    evaluationMicros: 3,
    ...extra,
  };
}

describe('findings from what the gateway says', () => {
  it('when a stop_job refusal message is read, then policy, version, rule, reason and action come out of it', () => {
    const message = `Refused by policy "runaway-guard" (version 1df27a402b3b, rule "agent-loop"): the job sent the same prompt 4 times. it is looping. Job "job-1" is stopped: its requests are refused until an admin clears it (POST /api/v1/jobs/job-1/clear). Decision ${DECISION_ID} (GET /api/v1/decisions/${DECISION_ID}).`;
    expect(findingOfRefusal(message, DECISION_ID)).toEqual({
      decisionId: DECISION_ID,
      policy: 'runaway-guard',
      version: '1df27a402b3b',
      mode: 'enforce',
      rule: 'agent-loop',
      action: 'stop_job',
      enforced: true,
      reason: 'the job sent the same prompt 4 times. it is looping',
    });
  });

  it('when a suspension or a block is read, then the action says which', () => {
    const suspend = `Refused by policy "p" (version abc, rule "r"): abuse. API key flk_abcd… is suspended until an admin resumes it (POST /api/v1/keys/k1/resume, flowloom keys resume k1). Decision ${DECISION_ID} (GET /api/v1/decisions/${DECISION_ID}).`;
    const block = `Refused by policy "p" (version abc, rule "r"): project forbidden may not call models. Decision ${DECISION_ID} (GET /api/v1/decisions/${DECISION_ID}).`;
    expect(findingOfRefusal(suspend, DECISION_ID)?.action).toBe('suspend_key');
    expect(findingOfRefusal(block, DECISION_ID)).toMatchObject({
      action: 'block',
      reason: 'project forbidden may not call models',
    });
  });

  it('when the message is another error or has no decision id, then there is no finding', () => {
    expect(findingOfRefusal('Job "x" was stopped at 2026-01-01 by policy "p"', DECISION_ID)).toBeUndefined();
    expect(
      findingOfRefusal('Refused by policy "p" (version a, rule "r"): x. Decision y', undefined),
    ).toBeUndefined();
  });

  it('when an intervention comes with its decision record, then the action parameters are shown', () => {
    expect(findingOf(intervention(), decision())).toMatchObject({
      action: 'throttle',
      detail: 'delay 300 ms',
      signals: { requests_per_minute: 12 },
      thresholds: [{ path: 'signals.requests_per_minute', operator: '>=', value: 10 }],
    });
    expect(findingOf(intervention()).detail).toBeUndefined();
    expect(actionDetail({ type: 'throttle', queue: true, maxWaitMs: 5000 })).toBe('queued, wait ≤ 5000 ms');
    expect(actionDetail({ type: 'reroute', model: 'budget', region: 'eu' })).toBe(
      'to model budget, region eu',
    );
    expect(actionDetail({ type: 'cap_max_tokens', value: 5 })).toBe('max_tokens 5');
  });

  it('when a decision record is read, then what it did or would have done comes with its signals', () => {
    expect(
      findingOfDecision(
        decision({
          policy: 'runaway-guard',
          version: VERSION,
          mode: 'shadow',
          rule: 'burst',
          verdict: 'allow',
          actions: [],
          enforced: false,
          message: 'too many',
          signals: { requests_per_minute: 12 },
        }),
      ),
    ).toEqual({
      decisionId: DECISION_ID,
      policy: 'runaway-guard',
      version: VERSION,
      mode: 'shadow',
      rule: 'burst',
      action: 'throttle',
      enforced: false,
      reason: 'too many',
      signals: { requests_per_minute: 12 },
      detail: 'delay 300 ms',
    });
    expect(
      findingOfDecision(
        decision({
          policy: 'p',
          version: VERSION,
          verdict: 'allow',
          intendedVerdict: 'allow',
          actions: [],
          intendedActions: [],
        }),
      ),
    ).toBeUndefined();
  });

  it("when a stop record names no policy (an admin's stop), then it is not a policy finding", () => {
    expect(findingOfStop({ actor: 'key/1 (ops)', reason: 'enough' })).toBeUndefined();
    expect(
      findingOfStop({
        actor: 'policy/p',
        reason: 'loop',
        decisionId: 'd',
        policy: 'p',
        version: 'v',
        rule: 'r',
      }),
    ).toMatchObject({ action: 'stop_job', enforced: true, mode: 'enforce' });
  });
});

describe('watching a job on the event bus', () => {
  it("when the job's decision, intervention and stop are published, then the watcher reports them and ignores other jobs", async () => {
    const bus = new InProcessBus();
    const watcher = new BusJobWatcher(bus, 'test');
    await watcher.ready();
    const seen: JobObservation[] = [];
    const watch = watcher.watch('job-1', (o) => seen.push(o));
    await bus.publish([
      createEvent(POLICY_DECISION, 'flowloom/gateway', decision(), 'job/job-1'),
      createEvent(POLICY_INTERVENTION, 'flowloom/gateway', intervention(), 'job/job-1'),
      createEvent(POLICY_INTERVENTION, 'flowloom/gateway', intervention({ job: 'job-2' }), 'job/job-2'),
      // The supervisor's own report comes back on the bus: it is not a new finding.
      createEvent(
        POLICY_INTERVENTION,
        'flowloom/gateway',
        intervention({ decisionId: 'own', origin: 'supervisor', policy: 'flowloom-run' }),
        'job/job-1',
      ),
      createEvent(
        POLICY_JOB_CHANGED,
        'flowloom/gateway',
        { job: 'job-1', status: 'stopped', actor: 'policy/x', reason: 'loop', decisionId: 'd', policy: 'p' },
        'job/job-1',
      ),
    ]);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ kind: 'finding', finding: { detail: 'delay 300 ms', rule: 'burst' } });
    expect(seen[0]?.kind === 'finding' && typeof seen[0].at).toBe('number');
    expect(seen[1]).toMatchObject({
      kind: 'stopped',
      stop: { reason: 'loop', decisionId: 'd', policy: 'p' },
    });
    await watch.stop();
    await bus.publish([createEvent(POLICY_INTERVENTION, 'flowloom/gateway', intervention(), 'job/job-1')]);
    expect(seen).toHaveLength(2);
  });
});

/** A platform answering the admin API from a table of `METHOD /path`; other paths are missing endpoints. */
function fakeApi(routes: Record<string, () => { status: number; body: unknown }>) {
  const calls: string[] = [];
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const path = url.pathname + url.search;
    calls.push(`${init?.method ?? 'GET'} ${path}`);
    const route = routes[`${init?.method ?? 'GET'} ${url.pathname}`];
    const answer = route
      ? route()
      : { status: 404, body: { error: { message: `No endpoint GET ${url.pathname}.`, code: 'not_found' } } };
    return new Response(JSON.stringify(answer.body), { status: answer.status });
  }) as typeof fetch;
  return { api: new PlatformApi('http://platform.test/', 'flk_admin', fetchImpl), calls };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe('watching a job through the admin API', () => {
  it('when the job is stopped and the platform has no interventions endpoint, then the stop is reported and the limit said once', async () => {
    const { api, calls } = fakeApi({
      'GET /api/v1/jobs/job-1': () => ({
        status: 200,
        body: {
          job: 'job-1',
          status: 'stopped',
          reason: 'loop',
          stoppedAt: new Date().toISOString(),
          stoppedBy: { actor: 'policy/p', decisionId: 'd-1', policy: 'p', version: VERSION, rule: 'r' },
          signals: { requests_per_minute: 4 },
        },
      }),
    });
    const seen: JobObservation[] = [];
    const watch = new ApiJobWatcher(api, { intervalMs: 10 }).watch('job-1', (o) => seen.push(o));
    await until(() => seen.filter((o) => o.kind === 'stopped').length >= 2);
    await watch.stop();
    expect(seen.find((o) => o.kind === 'stopped')).toMatchObject({
      stop: { decisionId: 'd-1', policy: 'p', rule: 'r', reason: 'loop' },
    });
    expect(seen.filter((o) => o.kind === 'limited')).toHaveLength(1);
    expect(calls.filter((c) => c.includes('/interventions'))).toHaveLength(1);
  });

  it('when a decision is to be explained, then its record is fetched and reported as a finding; a platform without the endpoint is asked once', async () => {
    const record = decision({
      policy: 'runaway-guard',
      version: VERSION,
      rule: 'burst',
      signals: { requests_per_minute: 11 },
    });
    const { api } = fakeApi({
      'GET /api/v1/jobs/job-1': () => ({ status: 200, body: { job: 'job-1', status: 'running' } }),
      [`GET /api/v1/decisions/${DECISION_ID}`]: () => ({ status: 200, body: record }),
    });
    const seen: JobObservation[] = [];
    const watch = new ApiJobWatcher(api, { intervalMs: 10 }).watch('job-1', (o) => seen.push(o));
    watch.explain?.(DECISION_ID);
    await until(() => seen.some((o) => o.kind === 'finding'));
    await watch.stop();
    expect(seen.find((o) => o.kind === 'finding')).toMatchObject({
      finding: { rule: 'burst', signals: { requests_per_minute: 11 }, detail: 'delay 300 ms' },
    });

    const without = fakeApi({
      'GET /api/v1/jobs/job-1': () => ({ status: 200, body: { job: 'job-1', status: 'running' } }),
    });
    const watch2 = new ApiJobWatcher(without.api, { intervalMs: 10 }).watch('job-1', () => {});
    watch2.explain?.('d-1');
    watch2.explain?.('d-2');
    await until(() => without.calls.filter((c) => c.startsWith('GET /api/v1/jobs/job-1')).length >= 5);
    await watch2.stop();
    expect(without.calls.filter((c) => c.includes('/decisions/'))).toHaveLength(1);
  });

  it("when an intervention's action has parameters, then they are read once from the policy version", async () => {
    let versionReads = 0;
    const { api } = fakeApi({
      'GET /api/v1/jobs/job-1': () => ({ status: 200, body: { job: 'job-1', status: 'running' } }),
      'GET /api/v1/jobs/job-1/interventions': () => ({
        status: 200,
        body: {
          data: [
            { ...intervention(), at: new Date().toISOString() },
            { ...intervention({ decisionId: `${DECISION_ID.slice(0, -1)}9` }), at: new Date().toISOString() },
          ],
          next: null,
        },
      }),
      [`GET /api/v1/policies/runaway-guard/versions/${VERSION}`]: () => {
        versionReads++;
        return {
          status: 200,
          body: { document: { rules: [{ id: 'burst', action: { type: 'throttle', delayMs: 250 } }] } },
        };
      },
    });
    const seen: JobObservation[] = [];
    const watch = new ApiJobWatcher(api, { intervalMs: 10 }).watch('job-1', (o) => seen.push(o));
    await until(() => seen.filter((o) => o.kind === 'finding').length >= 2);
    await watch.stop();
    const details = seen.flatMap((o) => (o.kind === 'finding' ? [o.finding.detail] : []));
    expect(details.slice(0, 2)).toEqual(['delay 250 ms', 'delay 250 ms']);
    expect(versionReads).toBe(1);
  });

  it('when the platform lists interventions, then each is reported once and the next poll asks after the last one', async () => {
    let page = 0;
    const { api, calls } = fakeApi({
      'GET /api/v1/jobs/job-1/interventions': () => {
        page++;
        return {
          status: 200,
          body: {
            data:
              page === 1
                ? [
                    { ...intervention(), at: new Date().toISOString() },
                    // The supervisor's own report: skipped, but the cursor moves past it.
                    { ...intervention({ decisionId: 'own-report', origin: 'supervisor' }) },
                  ]
                : [],
            next: null,
          },
        };
      },
      'GET /api/v1/jobs/job-1': () => ({ status: 200, body: { job: 'job-1', status: 'running' } }),
    });
    const seen: JobObservation[] = [];
    const watch = new ApiJobWatcher(api, { intervalMs: 10 }).watch('job-1', (o) => seen.push(o));
    await until(() => page >= 3);
    await watch.stop();
    expect(seen.filter((o) => o.kind === 'finding')).toHaveLength(1);
    expect(calls.some((c) => c.includes('after=own-report'))).toBe(true);
  });
});

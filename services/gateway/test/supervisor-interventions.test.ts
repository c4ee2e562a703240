import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support.js';

const INTERVENTION = 'dev.flowloom.policy.intervention.v1';

const report = {
  watch: 'memory',
  action: 'stop_job',
  reason: 'memory 612 MB is above --max-memory 512 MB',
  version: 'ab'.repeat(32),
  signals: { rss_mb: 612.4, processes: 3 },
  thresholds: [{ path: 'process.rss_mb', operator: '>', value: 512 }],
  keyId: 'key-of-the-job',
  attempt: 2,
  pid: 4242,
  command: 'node agent.js',
  at: '2026-01-02T03:04:05.000Z',
};

let t: TestGateway;
let member: string;
beforeAll(async () => {
  t = await startTestGateway();
  member = (await t.createKey({ name: 'agent' })).key;
});
afterAll(async () => {
  await t?.close();
});

describe('POST /api/v1/jobs/{job}/interventions', () => {
  it('when a supervisor reports a stop of its own, then it is recorded as an intervention event with the values, limits and the reporter', async () => {
    const res = await t.post('/api/v1/jobs/nightly-etl/interventions', report, t.adminKey);
    expect(res.status, res.text).toBe(201);
    const recorded = res.body as { decisionId: string; requestId: string };
    expect(recorded.requestId).toBe(res.headers.get('x-request-id'));
    const events = (await t.events()).filter((e) => e.type === INTERVENTION);
    expect(events).toHaveLength(1);
    expect(events[0]?.subject).toBe('job/nightly-etl');
    expect(events[0]?.data).toEqual({
      decisionId: recorded.decisionId,
      requestId: recorded.requestId,
      keyId: 'key-of-the-job',
      job: 'nightly-etl',
      action: 'stop_job',
      actions: ['stop_job'],
      enforced: true,
      mode: 'enforce',
      policy: 'flowloom-run',
      version: report.version,
      rule: 'memory',
      reason: report.reason,
      signals: report.signals,
      thresholds: report.thresholds,
      origin: 'supervisor',
      supervisor: {
        actor: expect.stringMatching(/^key\/.+ \(bootstrap-admin\)$/),
        attempt: 2,
        pid: 4242,
        command: 'node agent.js',
        at: report.at,
      },
    });
  });

  it('when the caller is not an admin, then no intervention is recorded, only the refused authentications', async () => {
    const before = (await t.events()).length;
    expect((await t.post('/api/v1/jobs/j/interventions', report, member)).status).toBe(403);
    expect((await t.post('/api/v1/jobs/j/interventions', report)).status).toBe(401);
    const added = (await t.events()).slice(before);
    expect(added.map((e) => [e.type, e.data.reason])).toEqual([
      ['dev.flowloom.gateway.auth.failed.v1', 'forbidden'],
      ['dev.flowloom.gateway.auth.failed.v1', 'missing_api_key'],
    ]);
  });

  it('when the report is malformed, then it is refused naming the field, and nothing is recorded', async () => {
    const before = (await t.events()).length;
    for (const [body, param] of [
      [{ ...report, watch: 'disk' }, 'watch'],
      [{ ...report, version: 'v1' }, 'version'],
      [{ ...report, signals: { rss_mb: 'a lot' } }, 'signals.rss_mb'],
      [{ ...report, injected: true }, ''],
    ] as const) {
      const res = await t.post('/api/v1/jobs/j/interventions', body, t.adminKey);
      expect(res.status, res.text).toBe(400);
      if (param) expect((res.body as { error: { param: string } }).error.param).toBe(param);
    }
    expect((await t.events()).length).toBe(before);
  });
});

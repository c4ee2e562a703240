import { describe, expect, it } from 'vitest';
import {
  type AlertNotice,
  type AlertPost,
  alertJson,
  alertSlack,
  isRetryableStatus,
  summaryLine,
} from './alerts.js';

const NOTICE: AlertNotice = {
  channel: 'ops',
  policy: 'runaway',
  version: 'a1b2c3d4e5f6a7b8c9d0',
  rule: 'loop',
  mode: 'enforce',
  phase: 'pre_call',
  decisionId: '0193a1b2-0000-7000-8000-000000000001',
  requestId: '0193a1b2-0000-7000-8000-000000000002',
  keyId: 'key_1',
  job: 'agent-7',
  subject: 'job/agent-7',
  explanation: 'the job repeats its prompt',
  signals: { repeated_prompts: 12, requests_per_minute: 40 },
  inputs: { 'signals.repeated_prompts': 12 },
  thresholds: [{ path: 'signals.repeated_prompts', operator: '>=', value: 5 }],
  at: Date.parse('2026-12-06T12:00:00Z'),
};

const single = (notice: AlertNotice = NOTICE): AlertPost => ({
  notice,
  count: 1,
  summary: false,
  firstAt: notice.at,
  lastAt: notice.at,
  windowMs: 60_000,
});

describe('alert payloads', () => {
  it('when the format is json, then the payload carries the policy, rule, ids, signals, thresholds, explanation and the decision path', () => {
    const payload = alertJson(single(), 'alert-1', 'https://flowloom.example.com/');
    expect(payload).toMatchObject({
      type: 'flowloom.alert',
      alertId: 'alert-1',
      policy: 'runaway',
      version: NOTICE.version,
      rule: 'loop',
      mode: 'enforce',
      decisionId: NOTICE.decisionId,
      requestId: NOTICE.requestId,
      keyId: 'key_1',
      job: 'agent-7',
      signals: { repeated_prompts: 12 },
      thresholds: [{ path: 'signals.repeated_prompts', operator: '>=', value: 5 }],
      explanation: 'the job repeats its prompt',
      count: 1,
      summary: false,
      decisionPath: `/api/v1/decisions/${NOTICE.decisionId}`,
      decisionUrl: `https://flowloom.example.com/api/v1/decisions/${NOTICE.decisionId}`,
    });
  });

  it('when no link base is configured, then the payload has the path but no URL', () => {
    const payload = alertJson(single(), 'alert-1', undefined);
    expect(payload.decisionPath).toBe(`/api/v1/decisions/${NOTICE.decisionId}`);
    expect(payload).not.toHaveProperty('decisionUrl');
  });

  it('when the format is slack, then one line names the policy, rule, job, values against thresholds, and links the decision', () => {
    const { text } = alertSlack(single(), 'https://flowloom.example.com');
    expect(text).not.toContain('\n');
    expect(text).toContain(
      'policy "runaway" rule "loop" (enforce) on job agent-7: the job repeats its prompt',
    );
    expect(text).toContain('signals.repeated_prompts=12 (&gt;= 5)');
    expect(text).toContain(`<https://flowloom.example.com/api/v1/decisions/${NOTICE.decisionId}|decision`);
  });

  it('when a summary stands for a burst, then the line says how many times in the window', () => {
    const line = summaryLine({ ...single(), count: 200, summary: true });
    expect(line).toMatch(/×200 in the last minute$/);
    expect(summaryLine(single())).not.toContain('×');
  });

  it('when text from a policy holds Slack markup, then it is escaped so it cannot ping or link', () => {
    const { text } = alertSlack(
      single({ ...NOTICE, explanation: 'hey <!channel> & <http://x|y>' }),
      undefined,
    );
    expect(text).toContain('hey &lt;!channel&gt; &amp; &lt;http://x|y&gt;');
  });

  it('when a channel answers, then 408, 425, 429 and 5xx are retried and other refusals are not', () => {
    expect([408, 425, 429, 500, 503].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 410].some(isRetryableStatus)).toBe(false);
  });
});

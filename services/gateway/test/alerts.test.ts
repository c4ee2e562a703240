import { canaryBucket } from '@flowloom/policy-engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import { sample } from './http-helpers.js';
import {
  chat,
  eventsOfType,
  INTERVENTION,
  type PolicyGateway,
  startPolicyGateway,
  testPostgres,
  within,
} from './policy-helpers.js';
import { deadUrl, startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.js';

const DELIVERY = 'dev.flowloom.policy.alert.delivery.v1';
const TOKEN = 'Bearer s3cret-pager-token-0123456789';

const POLICY = `
name: watchers
rules:
  - id: loud-agent
    condition: request.job.startsWith("loud-")
    action: { type: alert, channel: pager }
    message: a loud agent is calling models
  - id: chatty-agent
    condition: request.job.startsWith("chatty-")
    action: { type: alert, channel: slack }
    message: a chatty agent is calling models
  - id: lost-agent
    condition: request.job.startsWith("lost-")
    action: { type: alert, channel: nowhere }
`;

const job = (name: string) => ({ 'x-flowloom-job': name });

/** Alert settings quick enough for a test; each test file's channels are added. */
function alertsConfig(channels: Record<string, unknown>, more: Record<string, unknown> = {}) {
  return {
    alerts: {
      channels,
      linkBaseUrl: 'https://flowloom.example.com',
      timeoutMs: 1000,
      maxAttempts: 3,
      retryBaseMs: 20,
      retryMaxMs: 3000,
      ...more,
    },
  };
}

/** A receiver, and a gateway enforcing POLICY (or shadowing it) that alerts it as channel `pager`. */
function alertingGateway(
  options: { mode?: 'enforce' | 'shadow' | 'canary'; alerts?: Record<string, unknown> } = {},
) {
  const s: { t?: PolicyGateway; pager?: WebhookReceiver } = {};
  beforeAll(async () => {
    s.pager = await startWebhookReceiver();
    s.t = await startPolicyGateway(POLICY, {
      db: pg.db,
      ...(options.mode ? { mode: options.mode, percent: 50 } : {}),
      overrides: alertsConfig({ pager: { url: s.pager.url } }, options.alerts),
    });
  });
  afterAll(async () => {
    await s.t?.close();
    await s.pager?.close();
  });
  return s as { t: PolicyGateway; pager: WebhookReceiver };
}

let pg: TestDatabase;
beforeAll(async () => {
  pg = await testPostgres();
});
afterAll(async () => pg?.drop());

describe('enforced alerts', () => {
  let t: PolicyGateway;
  let pager: WebhookReceiver;
  let slack: WebhookReceiver;
  beforeAll(async () => {
    pager = await startWebhookReceiver();
    slack = await startWebhookReceiver();
    t = await startPolicyGateway(POLICY, {
      db: pg.db,
      env: { PAGER_TOKEN: TOKEN },
      overrides: alertsConfig({
        pager: { url: pager.url, format: 'json', headersEnv: { authorization: 'PAGER_TOKEN' } },
        slack: { url: slack.url, format: 'slack' },
      }),
    });
  });
  afterAll(async () => {
    await t?.close();
    await pager?.close();
    await slack?.close();
  });

  it('when an enforced rule alerts a json channel, then it receives FlowLoom payload with the token, and a delivered event is recorded', async () => {
    const res = await t.post('/v1/chat/completions', chat('hi'), t.adminKey, job('loud-1'));
    expect(res.status, res.text).toBe(200);
    const decisionId = res.headers.get('x-flowloom-decision')!;
    await within(5_000, async () => pager.posts.length === 1);
    const post = pager.posts[0]!;
    expect(post.headers.authorization).toBe(TOKEN);
    expect(post.headers['content-type']).toBe('application/json');
    expect(post.body).toMatchObject({
      type: 'flowloom.alert',
      policy: 'watchers',
      rule: 'loud-agent',
      mode: 'enforce',
      decisionId,
      requestId: res.headers.get('x-request-id'),
      job: 'loud-1',
      explanation: 'a loud agent is calling models',
      inputs: { 'request.job': 'loud-1' },
      count: 1,
      summary: false,
      decisionPath: `/api/v1/decisions/${decisionId}`,
      decisionUrl: `https://flowloom.example.com/api/v1/decisions/${decisionId}`,
    });
    expect(typeof post.body.version).toBe('string');
    expect(typeof post.body.keyId).toBe('string');
    expect(post.body).toHaveProperty('thresholds');
    await within(5_000, async () =>
      (await eventsOfType(t, DELIVERY)).some((e) => e.data.decisionId === decisionId),
    );
    const delivered = (await eventsOfType(t, DELIVERY)).find((e) => e.data.decisionId === decisionId)!;
    expect(delivered.data).toMatchObject({
      channel: 'pager',
      outcome: 'delivered',
      format: 'json',
      rule: 'loud-agent',
      attempts: 1,
      status: 200,
      count: 1,
    });
    expect(slack.posts).toHaveLength(0);
    const events = JSON.stringify(await t.events());
    expect(events).not.toContain('s3cret-pager-token');
    expect(events).not.toContain(pager.url);
  });

  it('when an enforced rule alerts a slack channel, then it receives one readable line linking the decision', async () => {
    const res = await t.post('/v1/chat/completions', chat('hi'), t.adminKey, job('chatty-1'));
    expect(res.status).toBe(200);
    const decisionId = res.headers.get('x-flowloom-decision')!;
    await within(5_000, async () => slack.posts.length === 1);
    const body = slack.posts[0]!.body;
    expect(Object.keys(body)).toEqual(['text']);
    const text = String(body.text);
    expect(text).not.toContain('\n');
    expect(text).toContain(
      'policy "watchers" rule "chatty-agent" (enforce) on job chatty-1: a chatty agent is calling models',
    );
    expect(text).toContain(
      `<https://flowloom.example.com/api/v1/decisions/${decisionId}|decision ${decisionId}>`,
    );
  });

  it('when a rule names a channel that is not configured, then the request passes and the alert is recorded as unconfigured and counted', async () => {
    const res = await t.post('/v1/chat/completions', chat('hi'), t.adminKey, job('lost-1'));
    expect(res.status).toBe(200);
    const decisionId = res.headers.get('x-flowloom-decision');
    await within(5_000, async () =>
      (await eventsOfType(t, DELIVERY)).some((e) => e.data.decisionId === decisionId),
    );
    const event = (await eventsOfType(t, DELIVERY)).find((e) => e.data.decisionId === decisionId)!;
    expect(event.data).toMatchObject({ channel: 'nowhere', outcome: 'unconfigured', attempts: 0 });
    const metrics = (await t.get('/metrics', t.adminKey)).text;
    expect(sample(metrics, 'flowloom_alerts_total', { channel: 'nowhere', outcome: 'unconfigured' })).toBe(1);
    expect(
      sample(metrics, 'flowloom_alerts_total', { channel: 'pager', outcome: 'delivered' }),
    ).toBeGreaterThan(0);
  });
});

describe('retries', () => {
  const s = alertingGateway();

  it('when the channel answers 503 with retry-after, then the post is retried after it and delivered once', async () => {
    s.pager.answer({ status: 503, headers: { 'retry-after': '1' } });
    const res = await s.t.post('/v1/chat/completions', chat('hi'), s.t.adminKey, job('loud-retry'));
    expect(res.status).toBe(200);
    const decisionId = res.headers.get('x-flowloom-decision');
    await within(5_000, async () =>
      (await eventsOfType(s.t, DELIVERY)).some((e) => e.data.decisionId === decisionId),
    );
    expect(s.pager.posts).toHaveLength(2);
    expect(s.pager.posts[1]!.at - s.pager.posts[0]!.at).toBeGreaterThanOrEqual(950);
    expect(s.pager.posts[1]!.body).toEqual(s.pager.posts[0]!.body);
    const events = (await eventsOfType(s.t, DELIVERY)).filter((e) => e.data.decisionId === decisionId);
    expect(events.map((e) => e.data)).toMatchObject([{ outcome: 'delivered', attempts: 2, status: 200 }]);
  });

  it('when the channel refuses with 404, then it is not retried and the failure says so', async () => {
    s.pager.answer({ status: 404 });
    const before = s.pager.posts.length;
    const res = await s.t.post('/v1/chat/completions', chat('hi'), s.t.adminKey, job('loud-404'));
    const decisionId = res.headers.get('x-flowloom-decision');
    await within(5_000, async () =>
      (await eventsOfType(s.t, DELIVERY)).some((e) => e.data.decisionId === decisionId),
    );
    const event = (await eventsOfType(s.t, DELIVERY)).find((e) => e.data.decisionId === decisionId)!;
    expect(event.data).toMatchObject({ outcome: 'failed', attempts: 1, status: 404 });
    expect(s.pager.posts.length - before).toBe(1);
  });
});

describe('a channel that is down', () => {
  let t: PolicyGateway;
  let url: string;
  beforeAll(async () => {
    url = await deadUrl();
    t = await startPolicyGateway(POLICY, {
      db: pg.db,
      overrides: alertsConfig({ pager: { url } }),
    });
  });
  afterAll(async () => t?.close());

  it('when the receiver is down, then the request is answered at once and a failed event names the attempts, not the URL', async () => {
    const started = Date.now();
    const res = await t.post('/v1/chat/completions', chat('hi'), t.adminKey, job('loud-down'));
    const elapsed = Date.now() - started;
    expect(res.status).toBe(200);
    // Three attempts with back-off would take far longer if the request waited for them.
    expect(elapsed).toBeLessThan(1_000);
    const decisionId = res.headers.get('x-flowloom-decision');
    await within(10_000, async () =>
      (await eventsOfType(t, DELIVERY)).some((e) => e.data.decisionId === decisionId),
    );
    const event = (await eventsOfType(t, DELIVERY)).find((e) => e.data.decisionId === decisionId)!;
    expect(event.data).toMatchObject({ channel: 'pager', outcome: 'failed', attempts: 3 });
    expect(String(event.data.error)).toContain('ECONNREFUSED');
    expect(JSON.stringify(event)).not.toContain(new URL(url).host);
    const metrics = (await t.get('/metrics', t.adminKey)).text;
    expect(sample(metrics, 'flowloom_alerts_total', { channel: 'pager', outcome: 'failed' })).toBe(1);
  });
});

describe('a burst', () => {
  const s = alertingGateway({ alerts: { windowSeconds: 2, perWindow: 1 } });

  it('when 200 requests of one job match within moments, then a bounded number of posts go out and their summaries count every match', async () => {
    const started = Date.now();
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 20 }, () =>
          s.t.post('/v1/chat/completions', chat('hi'), s.t.adminKey, job('loud-burst')),
        ),
      );
      expect(answers.every((r) => r.status === 200)).toBe(true);
    }
    const windows = Math.ceil((Date.now() - started) / 2_000) + 1;
    // With one post per window, each window that held matches back ends with a summary counting all of its matches.
    const counted = () => {
      const bodies = s.pager.posts.map((p) => p.body);
      const summaries = bodies.filter((b) => b.summary === true);
      return bodies.reduce((n, b) => n + Number(b.count), 0) - summaries.length;
    };
    await within(8_000, async () => counted() === 200);
    expect(s.pager.posts.length).toBeLessThanOrEqual(2 * windows);
    expect(s.pager.posts.length).toBeLessThan(20);
    const summary = s.pager.posts.map((p) => p.body).find((b) => b.summary === true)!;
    expect(Number(summary.count)).toBeGreaterThan(1);
    expect(String(summary.text)).toMatch(/×\d+ in the last 2 s$/);
    const metrics = (await s.t.get('/metrics', s.t.adminKey)).text;
    expect(sample(metrics, 'flowloom_alerts_total', { channel: 'pager', outcome: 'suppressed' })).toBe(
      200 - s.pager.posts.filter((p) => p.body.summary !== true).length,
    );
  });
});

describe('shadow', () => {
  const s = alertingGateway({ mode: 'shadow' });

  it('when the alerting version is in shadow, then the alert is recorded as intended and nothing is sent', async () => {
    const res = await s.t.post('/v1/chat/completions', chat('hi'), s.t.adminKey, job('loud-shadow'));
    expect(res.status).toBe(200);
    const decisionId = res.headers.get('x-flowloom-decision');
    const flagged = (await eventsOfType(s.t, INTERVENTION)).find((e) => e.data.decisionId === decisionId);
    expect(flagged?.data).toMatchObject({
      action: 'alert',
      channel: 'pager',
      enforced: false,
      mode: 'shadow',
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(s.pager.posts).toHaveLength(0);
    expect(await eventsOfType(s.t, DELIVERY)).toHaveLength(0);
  });
});

describe('a slow channel with a full queue', () => {
  const s = alertingGateway({ alerts: { queueSize: 1, timeoutMs: 5_000 } });

  it('when alerts arrive faster than the channel answers, then the oldest waiting ones are dropped, recorded and counted, and the requests do not wait', async () => {
    s.pager.answer(...Array.from({ length: 5 }, () => ({ status: 200, delayMs: 2_000 })));
    const started = Date.now();
    const ids: Array<string | null> = [];
    for (let i = 0; i < 5; i++) {
      const res = await s.t.post('/v1/chat/completions', chat('hi'), s.t.adminKey, job(`loud-slow-${i}`));
      expect(res.status).toBe(200);
      ids.push(res.headers.get('x-flowloom-decision'));
    }
    // Had the requests waited for their posts, the second alone would take 2 s.
    expect(Date.now() - started).toBeLessThan(2_000);
    const outcomes = async () =>
      (await eventsOfType(s.t, DELIVERY)).filter((e) => ids.includes(String(e.data.decisionId)));
    await within(8_000, async () => (await outcomes()).length === 5);
    const byOutcome = (await outcomes()).map((e) => e.data.outcome);
    // The first is in flight, the last waits in the queue of one; the ones between are pushed out.
    expect(byOutcome.filter((o) => o === 'delivered')).toHaveLength(2);
    expect(byOutcome.filter((o) => o === 'dropped')).toHaveLength(3);
    const metrics = (await s.t.get('/metrics', s.t.adminKey)).text;
    expect(sample(metrics, 'flowloom_alerts_total', { channel: 'pager', outcome: 'dropped' })).toBe(3);
  });
});

describe('canary', () => {
  const s = alertingGateway({ mode: 'canary' });

  it('when the alerting version is in canary, then only the jobs in its share are alerted; the rest are recorded only', async () => {
    const jobs = Array.from({ length: 12 }, (_, i) => `loud-canary-${i}`);
    let version = '';
    for (const name of jobs) {
      const res = await s.t.post('/v1/chat/completions', chat('hi'), s.t.adminKey, job(name));
      expect(res.status).toBe(200);
      const flagged = (await eventsOfType(s.t, INTERVENTION)).find(
        (e) => e.data.decisionId === res.headers.get('x-flowloom-decision'),
      );
      version = String(flagged?.data.version);
    }
    const enforced = jobs.filter((name) => canaryBucket(version, name) < 5000);
    expect(enforced.length).toBeGreaterThan(0);
    expect(enforced.length).toBeLessThan(jobs.length);
    await within(5_000, async () => s.pager.posts.length >= enforced.length);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(s.pager.posts.map((p) => p.body.job).sort()).toEqual([...enforced].sort());
    expect(s.pager.posts.every((p) => p.body.mode === 'canary')).toBe(true);
  });
});

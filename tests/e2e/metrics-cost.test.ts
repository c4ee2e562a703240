import { sample, startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from '../fakes/index.js';
import { eventFor } from './helpers.js';

// /metrics with a priced deployment: flowloom_cost_usd_total grows by exactly the cost the price table
// gives the usage the provider reported (fresh input, cached input and output at their own rates), and
// flowloom_request_duration_seconds counts each request, streamed or not, within the time it took.

/** USD per million tokens: $0.000003 per fresh input token, $0.0000005 per cached one, $0.000012 per output token. */
const PRICE = { input: 3, output: 12, cachedInput: 0.5 };
const SERIES = { model: 'priced', deployment: 'priced/gpt-4o' };

let fake: FakeProvider;
let t: TestGateway;
let key: string;

beforeAll(async () => {
  fake = await startFakeProvider({ kind: 'openai', apiKey: 'sk-priced' });
  t = await startTestGateway({
    overrides: {
      providers: { priced: { kind: 'openai', baseUrl: `${fake.url}/v1`, apiKey: 'sk-priced' } },
      models: { priced: { deployments: [{ provider: 'priced', model: 'gpt-4o', price: PRICE }] } },
      routing: { maxAttempts: 1 },
    },
  });
  key = (await t.createKey({ name: 'metrics' })).key;
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
});

async function metrics(): Promise<string> {
  const res = await fetch(`${t.url}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** How much a series grew between two scrapes (a series not yet there counts as 0). */
const grown = (before: string, after: string, name: string, labels: Record<string, string>) =>
  (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);

async function timedChat(stream: boolean) {
  const started = performance.now();
  const res = await t.post(
    '/v1/chat/completions',
    {
      model: 'priced',
      messages: [{ role: 'user', content: 'what does it cost?' }],
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    },
    key,
  );
  return { ...res, seconds: (performance.now() - started) / 1000 };
}

describe('cost and latency metrics', () => {
  it('when a priced deployment answers, then flowloom_cost_usd_total grows by exactly the computed cost and the duration histogram counts the request', async () => {
    fake.script({
      kind: 'reply',
      text: 'about this much',
      usage: { input: 1000, output: 250, cached: 400 },
      delayMs: 50,
    });
    const before = await metrics();
    const res = await timedChat(false);
    expect(res.status, res.text).toBe(200);
    const after = await metrics();

    // 600 fresh × $3 + 400 cached × $0.5 + 250 output × $12, per million tokens = $0.005.
    const expected = (600 * 3 + 400 * 0.5 + 250 * 12) / 1_000_000;
    expect(grown(before, after, 'flowloom_cost_usd_total', SERIES)).toBeCloseTo(expected, 12);
    const event = await eventFor(t, res.headers.get('x-request-id'));
    expect(event.data.costUsd).toBeCloseTo(expected, 12);

    const histogram = { api: 'openai', stream: 'false' };
    expect(grown(before, after, 'flowloom_request_duration_seconds_count', histogram)).toBe(1);
    expect(
      grown(before, after, 'flowloom_request_duration_seconds_bucket', { ...histogram, le: '+Inf' }),
    ).toBe(1);
    const observed = grown(before, after, 'flowloom_request_duration_seconds_sum', histogram);
    // At least the provider's delay, at most what the caller waited.
    expect(observed).toBeGreaterThanOrEqual(0.045);
    expect(observed).toBeLessThanOrEqual(res.seconds);
    // Not in a bucket below the provider's delay.
    expect(
      grown(before, after, 'flowloom_request_duration_seconds_bucket', { ...histogram, le: '0.025' }),
    ).toBe(0);
  });

  it('when a streamed answer reports its usage at the end, then its cost is added too and the streamed histogram counts it', async () => {
    fake.script({
      kind: 'reply',
      text: 'streamed at a price',
      usage: { input: 2000, output: 500, cached: 0 },
    });
    const before = await metrics();
    const res = await timedChat(true);
    expect(res.status, res.text).toBe(200);
    expect(res.text).toContain('data: [DONE]');
    const after = await metrics();

    const expected = (2000 * 3 + 500 * 12) / 1_000_000;
    expect(grown(before, after, 'flowloom_cost_usd_total', SERIES)).toBeCloseTo(expected, 12);
    const histogram = { api: 'openai', stream: 'true' };
    expect(grown(before, after, 'flowloom_request_duration_seconds_count', histogram)).toBe(1);
    // Counted once: not again as a non-streamed request.
    expect(
      grown(before, after, 'flowloom_request_duration_seconds_count', { ...histogram, stream: 'false' }),
    ).toBe(0);
    expect(
      grown(before, after, 'flowloom_requests_total', { api: 'openai', status: '200', stream: 'false' }),
    ).toBe(0);
    const observed = grown(before, after, 'flowloom_request_duration_seconds_sum', histogram);
    expect(observed).toBeGreaterThan(0);
    expect(observed).toBeLessThanOrEqual(res.seconds);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAnthropicError, expectOpenAIError, sample, send, UUID_V7 } from './http-helpers.js';
import { startTestGateway, type TestGateway } from './support.js';

let t: TestGateway;
let key: string;

beforeAll(async () => {
  t = await startTestGateway();
  key = (await t.createKey({ name: 'ops' })).key;
});
afterAll(async () => t.close());

async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function metrics(): Promise<string> {
  const res = await t.get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text;
}

const scripted = (script: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  model: 'flowloom-local',
  messages: [{ role: 'user', content: `flowloom-local: ${JSON.stringify(script)}` }],
  ...extra,
});

describe('health and readiness', () => {
  it('when /healthz is asked without a key, then it answers 200 with a request id', async () => {
    const res = await t.get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers.get('x-request-id')).toMatch(UUID_V7);
  });

  it('when /readyz is asked, then it is 200 with the database check ok', async () => {
    const res = await t.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', checks: { database: 'ok' } });
  });

  it('when a caller sends its own x-request-id, then the gateway mints its own instead', async () => {
    const res = await send(t, '/healthz', { method: 'GET', headers: { 'x-request-id': 'forged-id' } });
    expect(res.headers.get('x-request-id')).toMatch(UUID_V7);
    expect(res.headers.get('x-request-id')).not.toBe('forged-id');
  });
});

describe('metrics', () => {
  it('when a consumer of the bus is behind, then the outbox backlog gauge counts the waiting events until it catches up', async () => {
    const backlog = async (): Promise<number> =>
      sample(await metrics(), 'flowloom_outbox_backlog_events', {}) ?? -1;
    await until(async () => (await backlog()) === 0);
    // A consumer that holds every delivery until released: the in-process bus waits for all of them.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = true;
    await t.gateway.bus.subscribe('slow-consumer', async () => {
      if (holding) await held;
    });
    const res = await t.post('/v1/chat/completions', scripted({ reply: 'ok' }), key);
    expect(res.status).toBe(200);
    // The first event is taken by the held delivery; the next request's event waits behind it.
    await t.post('/v1/chat/completions', scripted({ reply: 'ok' }), key);
    await until(async () => (await backlog()) >= 1);
    holding = false;
    release();
    await until(async () => (await backlog()) === 0);
  });

  it('when a chat request is answered, then requests, tokens and cost series count it', async () => {
    const before = await metrics();
    const res = await t.post(
      '/v1/chat/completions',
      scripted({ reply: 'ok', inputTokens: 11, outputTokens: 7 }),
      key,
    );
    expect(res.status).toBe(200);
    const after = await metrics();

    const requests = { api: 'openai', status: '200' };
    expect(after).toContain('flowloom_requests_total');
    expect(
      (sample(after, 'flowloom_requests_total', requests) ?? 0) -
        (sample(before, 'flowloom_requests_total', requests) ?? 0),
    ).toBe(1);

    const series = { model: 'flowloom-local', deployment: 'local/flowloom-local' };
    const delta = (kind: string) =>
      (sample(after, 'flowloom_tokens_total', { ...series, kind }) ?? 0) -
      (sample(before, 'flowloom_tokens_total', { ...series, kind }) ?? 0);
    expect(after).toContain('flowloom_tokens_total');
    expect(delta('input')).toBe(11);
    expect(delta('output')).toBe(7);
    expect(sample(after, 'flowloom_cost_usd_total', series)).toBe(0);
    expect(
      sample(after, 'flowloom_upstream_duration_seconds_count', {
        deployment: 'local/flowloom-local',
        outcome: 'ok',
      }),
    ).toBeGreaterThan(0);
  });

  it('when an Anthropic-format request is answered, then it is counted under api="anthropic"', async () => {
    const labels = { api: 'anthropic', status: '200' };
    const before = sample(await metrics(), 'flowloom_requests_total', labels) ?? 0;
    const res = await send(t, '/v1/messages', {
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'flowloom-local',
        max_tokens: 20,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    expect(res.status).toBe(200);
    expect(sample(await metrics(), 'flowloom_requests_total', labels)).toBe(before + 1);
  });

  it('when a request fails, then its status and the upstream errors are counted', async () => {
    const before = await metrics();
    const res = await t.post('/v1/chat/completions', scripted({ error: { status: 500 } }), key);
    expect(res.status).toBe(502);
    const after = await metrics();
    const failed = { api: 'openai', status: '502' };
    expect(
      (sample(after, 'flowloom_requests_total', failed) ?? 0) -
        (sample(before, 'flowloom_requests_total', failed) ?? 0),
    ).toBe(1);
    const errors = { deployment: 'local/flowloom-local', kind: 'http' };
    expect(
      (sample(after, 'flowloom_upstream_errors_total', errors) ?? 0) -
        (sample(before, 'flowloom_upstream_errors_total', errors) ?? 0),
    ).toBe(3);
  });

  it('when a streamed request is answered, then it is counted as a stream with its tokens', async () => {
    const before = await metrics();
    const res = await t.post(
      '/v1/chat/completions',
      scripted({ reply: 'a b c', inputTokens: 5, outputTokens: 3 }, { stream: true }),
      key,
    );
    expect(res.status).toBe(200);
    expect(res.text).toContain('data: [DONE]');
    const after = await metrics();
    const series = { model: 'flowloom-local', deployment: 'local/flowloom-local', kind: 'output' };
    expect(
      (sample(after, 'flowloom_tokens_total', series) ?? 0) -
        (sample(before, 'flowloom_tokens_total', series) ?? 0),
    ).toBe(3);
    expect(
      sample(after, 'flowloom_time_to_first_token_seconds_count', { deployment: 'local/flowloom-local' }),
    ).toBeGreaterThan(0);
    const streamed = { api: 'openai', status: '200', stream: 'true' };
    expect(
      (sample(after, 'flowloom_requests_total', streamed) ?? 0) -
        (sample(before, 'flowloom_requests_total', streamed) ?? 0),
    ).toBe(1);
  });
});

describe('the OpenAPI document', () => {
  it('when /api/v1/openapi.json is fetched, then it is valid JSON listing the API paths', async () => {
    const res = await t.get('/api/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const doc = JSON.parse(res.text) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/chat/completions',
        '/v1/messages',
        '/v1/embeddings',
        '/v1/models',
        '/api/v1/keys',
        '/api/v1/keys/{id}',
        '/api/v1/keys/{id}/revoke',
        '/api/v1/keys/{id}/rotate',
        '/healthz',
        '/readyz',
        '/metrics',
      ]),
    );
    expect(Object.keys(doc.paths['/api/v1/keys'] ?? {}).sort()).toEqual(['get', 'post']);
  });

  it('when the document refers to a schema, then that schema exists', async () => {
    const doc = (await t.get('/api/v1/openapi.json')).body as Record<string, unknown>;
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      let node: unknown = doc;
      for (const part of ref.split('/')) node = (node as Record<string, unknown> | undefined)?.[part];
      expect(node, ref).toBeTypeOf('object');
    }
  });
});

describe('unknown routes', () => {
  it('when a route does not exist, then it is a 404 in OpenAI format with a request id', async () => {
    const error = expectOpenAIError(await t.get('/v1/nothing-here', key), 404, 'not_found');
    expect(error.message).toContain('/v1/nothing-here');
    expectOpenAIError(await t.post('/api/v1/unknown', {}, t.adminKey), 404, 'not_found');
  });

  it('when a known path is called with the wrong method, then it is a 404, not a 500', async () => {
    expectOpenAIError(await t.get('/v1/chat/completions', key), 404, 'not_found');
    expectOpenAIError(await send(t, '/api/v1/keys', { method: 'DELETE' }), 404, 'not_found');
  });

  it('when an unknown route is under /v1/messages, then the 404 is in Anthropic format', async () => {
    expectAnthropicError(await t.post('/v1/messages/batches', {}, key), 404, 'not_found_error');
  });

  it('when the unknown path has a query string, then the message does not echo it', async () => {
    const error = expectOpenAIError(
      await t.get('/v1/nope?api_key=flk_secret-in-query', key),
      404,
      'not_found',
    );
    expect(error.message).not.toContain('flk_secret-in-query');
  });
});

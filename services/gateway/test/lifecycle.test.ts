import type { CloudEvent } from '@flowloom/contracts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { eventsOf, REQUEST_COMPLETED, REQUEST_FAILED, sample, sleep } from './http-helpers.js';
import { startTestGateway, type TestGateway } from './support.js';

// Client disconnects, a circuit breaker probe cut short, and graceful shutdown. The shutdown test
// closes the gateway, so it runs last.

const COOLDOWN_MS = 1_000;
let t: TestGateway;
let key: string;
const seen: CloudEvent[] = [];

beforeAll(async () => {
  t = await startTestGateway({
    overrides: {
      // A separate deployment id (the region) so breaker state cannot leak into the other tests.
      models: {
        'probe-model': { deployments: [{ provider: 'local', model: 'flowloom-local', region: 'probe' }] },
      },
      routing: { maxAttempts: 1, circuitBreaker: { failureThreshold: 1, cooldownMs: COOLDOWN_MS } },
    },
  });
  // Our own recorder: after close() the harness cannot flush, but the relay drains on shutdown.
  await t.gateway.bus.subscribe('lifecycle-recorder', async (event) => {
    seen.push(event);
  });
  key = (await t.createKey({ name: 'lifecycle' })).key;
});
afterAll(async () => t.close());

function script(s: Record<string, unknown>): string {
  return `flowloom-local: ${JSON.stringify(s)}`;
}

function start(
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

const decoder = new TextDecoder();

describe('client disconnects', () => {
  it('when the client aborts a slow non-streamed request, then it is recorded as client_closed, not completed', async () => {
    const job = `disconnect-${Date.now()}`;
    const controller = new AbortController();
    const pending = start(
      {
        model: 'flowloom-local',
        messages: [{ role: 'user', content: script({ reply: 'late', delayMs: 800 }) }],
      },
      { 'x-flowloom-job': job },
      controller.signal,
    );
    await sleep(150);
    controller.abort();
    await expect(pending).rejects.toThrow();
    // Past the moment the upstream would have answered had it not been cancelled.
    await sleep(900);
    const events = await eventsOf(t);
    expect(events.filter((e) => e.data.job === job && e.type === REQUEST_COMPLETED)).toEqual([]);
    const failed = events.filter((e) => e.data.job === job && e.type !== REQUEST_COMPLETED);
    expect(failed.map((e) => [e.data.errorCode, e.data.httpStatus])).toEqual([['client_closed', 499]]);
  });

  it('when the client abandons a stream midway, then it is recorded as failed with client_closed, not completed', async () => {
    const job = `stream-disconnect-${Date.now()}`;
    const controller = new AbortController();
    const res = await start(
      {
        model: 'flowloom-local',
        stream: true,
        messages: [{ role: 'user', content: script({ reply: 'a b c d e f', chunks: 6, chunkDelayMs: 150 }) }],
      },
      { 'x-flowloom-job': job },
      controller.signal,
    );
    expect(res.status).toBe(200);
    const reader = res.body?.getReader();
    if (!reader) throw new Error('no body');
    await reader.read();
    controller.abort();
    await reader.read().catch(() => {});
    await sleep(1_100);
    const events = (await eventsOf(t)).filter((e) => e.data.job === job);
    expect(events.map((e) => e.type)).toEqual([REQUEST_FAILED]);
    expect(events[0]?.data).toMatchObject({ errorCode: 'client_closed', httpStatus: 499, stream: true });
  });
});

describe('circuit breaker and cancelled probes', () => {
  const probe = (content: string, signal?: AbortSignal) =>
    start({ model: 'probe-model', messages: [{ role: 'user', content }] }, {}, signal);

  it('when the half-open probe is cancelled by its caller, then the deployment is not stuck open forever', async () => {
    // One failure opens the breaker (threshold 1).
    expect((await probe(script({ error: { status: 503 } }))).status).toBe(502);
    const open = await probe('hello');
    expect(open.status).toBe(503);
    expect(((await open.json()) as { error: { code: string } }).error.code).toBe('no_deployment_available');

    // After the cooldown the next request is the probe; its caller goes away mid-call.
    await sleep(COOLDOWN_MS + 50);
    const controller = new AbortController();
    const cut = probe(script({ reply: 'slow', delayMs: 3_000 }), controller.signal);
    await sleep(300);
    controller.abort();
    await expect(cut).rejects.toThrow();
    // The probe did reach the deployment and was cancelled there (not before it arrived).
    const aborted = { deployment: 'local/flowloom-local@probe', kind: 'aborted' };
    await vi.waitFor(
      async () =>
        expect(sample((await t.get('/metrics')).text, 'flowloom_upstream_errors_total', aborted)).toBe(1),
      {
        timeout: 3_000,
      },
    );

    // Whatever the breaker decides about a cancelled probe, after another cooldown it must let one through.
    await sleep(COOLDOWN_MS + 100);
    const recovered = await probe('hello again');
    expect(recovered.status, await recovered.clone().text()).toBe(200);
  });
});

describe('graceful shutdown', () => {
  let streamEndedAt: number | undefined;
  let closedAt: number | undefined;

  it('when the gateway closes during a stream, then the stream still completes with [DONE] and its event is published', async () => {
    const res = await start({
      model: 'flowloom-local',
      stream: true,
      messages: [{ role: 'user', content: script({ reply: 'a b c d e f', chunks: 6, chunkDelayMs: 200 }) }],
    });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id');
    const reader = res.body?.getReader();
    if (!reader) throw new Error('no body');
    let text = decoder.decode((await reader.read()).value ?? new Uint8Array());

    const closing = t.gateway.close();
    let closed = false;
    void closing.then(() => {
      closed = true;
    });

    // While closing, the gateway takes no new requests.
    const refused = await start({
      model: 'flowloom-local',
      messages: [{ role: 'user', content: 'late' }],
    }).then(
      (r) => r.status,
      () => 'refused',
    );
    expect([503, 'refused']).toContain(refused);

    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    streamEndedAt = performance.now();
    const frames = text.split('\n\n').filter(Boolean);
    expect(frames.at(-1)).toBe('data: [DONE]');
    const content = frames
      .slice(0, -1)
      .map((f) => JSON.parse(f.slice('data: '.length)) as { choices: Array<{ delta: { content?: string } }> })
      .map((c) => c.choices[0]?.delta.content ?? '')
      .join('');
    expect(content).toBe('a b c d e f');

    await closing;
    closedAt = performance.now();
    expect(closed).toBe(true);
    const completed = seen.find((e) => (e.data as { requestId?: string }).requestId === requestId);
    expect(completed?.type).toBe(REQUEST_COMPLETED);
  });

  it('when the last stream has finished, then closing completes promptly, not held open by idle keep-alive connections', () => {
    expect(streamEndedAt).toBeDefined();
    expect(closedAt).toBeDefined();
    // Draining the outbox and closing the database take milliseconds; the client's idle keep-alive
    // connection (undici keeps one for 4 s, other clients far longer) must not delay shutdown.
    expect((closedAt ?? Number.POSITIVE_INFINITY) - (streamEndedAt ?? 0)).toBeLessThan(1_500);
  });

  it('when the gateway has closed, then it refuses connections', async () => {
    await expect(fetch(`${t.url}/healthz`)).rejects.toThrow();
  });
});

import { GATEWAY_AUTH_FAILED } from '@flowloom/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support.js';

// A client hammering the gateway with a bad key does not flood the audit trail: its first refusal is
// recorded at once, the rest of the window as one auth.failed event with their count, so the trail
// still tells how many attempts failed. Open windows are recorded when the gateway stops.

const WINDOW_MS = 4_000;
const chat = { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] };

type Event = Awaited<ReturnType<TestGateway['events']>>[number];

async function failures(t: TestGateway, hint: string): Promise<Event[]> {
  return (await t.events()).filter((e) => e.type === GATEWAY_AUTH_FAILED && e.data.keyHint === hint);
}

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('refused keys in the audit trail', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ overrides: { authFailureWindowMs: WINDOW_MS } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('when a client sends one bad key 40 times, then the first is recorded at once and the other 39 as one event with their count', async () => {
    const bad = 'flk_hammer-0123456789abcdefghijklmnopqrst';
    const firstRes = await t.post('/v1/chat/completions', chat, bad);
    expect(firstRes.status).toBe(401);
    const first = await failures(t, 'flk_hamm…');
    expect(first).toHaveLength(1);
    expect(first[0]?.data).toMatchObject({
      requestId: firstRes.headers.get('x-request-id'),
      reason: 'invalid_api_key',
      sourceIp: '127.0.0.1',
      windowSeconds: WINDOW_MS / 1000,
    });
    expect(first[0]?.data.count).toBeUndefined();

    const started = Date.now();
    const rest = await Promise.all(
      Array.from({ length: 39 }, () => t.post('/v1/chat/completions', chat, bad)),
    );
    const elapsed = Date.now() - started;
    expect(rest.every((r) => r.status === 401)).toBe(true);
    // Every attempt is accounted for once its windows have closed: 1 + 39.
    const all = await eventually(async () => {
      const found = await failures(t, 'flk_hamm…');
      return found.reduce((n, e) => n + Number(e.data.count ?? 1), 0) === 40 ? found : undefined;
    }, WINDOW_MS + 5_000);
    // At most one event at once and one summary per window the burst spanned (here normally one).
    expect(all.length).toBeLessThanOrEqual(2 * (Math.floor(elapsed / WINDOW_MS) + 1));
    const summary = all[all.length - 1]?.data ?? {};
    const ids = new Set(rest.map((r) => r.headers.get('x-request-id')));
    expect(ids.has(String(summary.requestId))).toBe(true);
    expect(summary).toMatchObject({
      reason: 'invalid_api_key',
      surface: 'model',
      sourceIp: '127.0.0.1',
      distinctKeys: 1,
    });
    expect(Number(summary.count)).toBeGreaterThan(1);
    expect(Date.parse(String(summary.lastAt))).toBeGreaterThanOrEqual(Date.parse(String(summary.firstAt)));
    expect(JSON.stringify(all)).not.toContain(bad.slice(8));

    // After the window, the next refusal is recorded at once again.
    const again = await t.post('/v1/chat/completions', chat, bad);
    const after = await failures(t, 'flk_hamm…');
    expect(after).toHaveLength(all.length + 1);
    expect(after[after.length - 1]?.data).toMatchObject({ requestId: again.headers.get('x-request-id') });
    expect(after[after.length - 1]?.data.count).toBeUndefined();
  });

  it('when the same bad key hits the admin API too, then that surface has a window of its own', async () => {
    const bad = 'flk_twofold-0123456789abcdefghijklmnopqr';
    expect((await t.post('/v1/chat/completions', chat, bad)).status).toBe(401);
    expect((await t.get('/api/v1/keys', bad)).status).toBe(401);
    const found = await failures(t, 'flk_twof…');
    expect(found.map((e) => e.data.surface).sort()).toEqual(['admin', 'model']);
  });

  it('when the gateway stops while a window is open, then what it counted is still recorded', async () => {
    const own = await startTestGateway({ overrides: { authFailureWindowMs: 3_600_000 } });
    const bad = 'flk_shutdown-0123456789abcdefghijklmnopq';
    for (let i = 0; i < 5; i++) expect((await own.post('/v1/chat/completions', chat, bad)).status).toBe(401);
    expect(await failures(own, 'flk_shut…')).toHaveLength(1);
    const published = await own.events();
    await own.close();
    const recorded = published.filter(
      (e) => e.type === GATEWAY_AUTH_FAILED && e.data.keyHint === 'flk_shut…',
    );
    expect(recorded.map((e) => e.data.count ?? 1)).toEqual([1, 4]);
  });
});

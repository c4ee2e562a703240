import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support.js';

// flowloom-local is free; give it a price so that spend is measurable.
const PRICED = { prices: { 'flowloom-local': { input: 1000, output: 1000 } } };
const ask = (reply: string) => ({
  model: 'flowloom-local',
  max_tokens: 40,
  messages: [
    { role: 'user', content: `flowloom-local: {"reply":"${reply}","inputTokens":10,"outputTokens":30}` },
  ],
});

describe('budgets', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({
      overrides: { ...PRICED, budgets: [{ scope: 'project', id: 'alpha', period: 'day', limitUsd: 0.12 }] },
    });
  });
  afterAll(async () => t.close());

  it('when a project spends its daily budget, then the next request is refused with the budget and the reset time', async () => {
    const { key } = await t.createKey({ project: 'alpha' });
    // Each answer costs $0.04; the worst case reserved up front is (~32 estimated input + 40) × $0.001 ≈ $0.072.
    expect((await t.post('/v1/chat/completions', ask('a'), key)).status).toBe(200);
    expect((await t.post('/v1/chat/completions', ask('b'), key)).status).toBe(200);
    const refused = await t.post('/v1/chat/completions', ask('c'), key);
    expect(refused.status).toBe(429);
    const error = (refused.body as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('budget_exceeded');
    expect(error.message).toMatch(/project alpha, per day, \$0\.12/);
    expect(error.message).toMatch(/\$0\.08 spent/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const anthropic = await t.post('/v1/messages', { ...ask('d'), max_tokens: 50 }, key);
    expect(anthropic.status).toBe(429);
    expect(anthropic.body).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
  });

  it("when another project spends, then alpha's budget does not apply to it", async () => {
    const { key } = await t.createKey({ project: 'beta' });
    for (let i = 0; i < 3; i++)
      expect((await t.post('/v1/chat/completions', ask('x'), key)).status).toBe(200);
  });
});

describe('budgets under concurrency', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({
      overrides: { ...PRICED, budgets: [{ scope: 'key', period: 'total', limitUsd: 0.5 }] },
    });
  });
  afterAll(async () => t.close());

  it('when 40 requests race for one budget, then the recorded spend stays within it', async () => {
    const { key, id } = await t.createKey();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => t.post('/v1/chat/completions', ask(`r${i}`), key)),
    );
    const answered = results.filter((r) => r.status === 200).length;
    expect(results.filter((r) => r.status === 429).length).toBe(40 - answered);
    // Each costs $0.04 and reserves ~$0.072: at least 6 fit, never more than 12.
    expect(answered).toBeGreaterThanOrEqual(6);
    expect(answered).toBeLessThanOrEqual(12);
    const events = await t.events();
    const spent = events
      .filter((e) => e.type === 'dev.flowloom.gateway.request.completed.v1' && e.data.keyId === id)
      .reduce((sum, e) => sum + Number(e.data.costUsd), 0);
    expect(spent).toBeLessThanOrEqual(0.5 + 1e-9);
  });
});

describe('rate limits', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ overrides: { rateLimits: [{ scope: 'key', requestsPerMinute: 2 }] } });
  });
  afterAll(async () => t.close());

  it('when a key sends more than its requests per minute, then it gets 429 rate_limited with retry-after', async () => {
    const { key } = await t.createKey();
    const other = await t.createKey();
    const body = { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] };
    expect((await t.post('/v1/chat/completions', body, key)).status).toBe(200);
    expect((await t.post('/v1/chat/completions', body, key)).status).toBe(200);
    const limited = await t.post('/v1/chat/completions', body, key);
    expect(limited.status).toBe(429);
    expect((limited.body as { error: { code: string } }).error.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await t.post('/v1/chat/completions', body, other.key)).status).toBe(200);
  });
});

describe('team, job and month budgets, tokens per minute', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({
      overrides: {
        ...PRICED,
        budgets: [
          { scope: 'team', id: 'research', period: 'total', limitUsd: 0.12 },
          { scope: 'job', period: 'day', limitUsd: 0.12 },
          { scope: 'key', period: 'month', limitUsd: 0.12 },
        ],
        rateLimits: [{ scope: 'team', id: 'ops', tokensPerMinute: 50 }],
      },
    });
  });
  afterAll(async () => t.close());

  const spendTwiceThenRefused = async (
    key: string,
    headers: Record<string, string>,
    label: RegExp,
  ): Promise<void> => {
    expect((await t.post('/v1/chat/completions', ask('a'), key, headers)).status).toBe(200);
    expect((await t.post('/v1/chat/completions', ask('b'), key, headers)).status).toBe(200);
    const refused = await t.post('/v1/chat/completions', ask('c'), key, headers);
    expect(refused.status).toBe(429);
    const error = (refused.body as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('budget_exceeded');
    expect(error.message).toMatch(label);
  };

  it("when a team spends its budget through two keys, then the team's next request is refused", async () => {
    const first = await t.createKey({ team: 'research' });
    const second = await t.createKey({ team: 'research' });
    expect((await t.post('/v1/chat/completions', ask('a'), first.key)).status).toBe(200);
    expect((await t.post('/v1/chat/completions', ask('b'), second.key)).status).toBe(200);
    const refused = await t.post('/v1/chat/completions', ask('c'), first.key);
    expect(refused.status).toBe(429);
    expect((refused.body as { error: { message: string } }).error.message).toMatch(
      /team research, in total, \$0\.12/,
    );
    // No reset for a total budget: the message says who can raise it.
    expect((refused.body as { error: { message: string } }).error.message).toMatch(/Ask an admin/);
  });

  it('when a job spends its daily budget, then that job is refused and another job of the key is not', async () => {
    const { key } = await t.createKey();
    await spendTwiceThenRefused(key, { 'x-flowloom-job': 'nightly' }, /job nightly, per day, \$0\.12/);
    // The key's own monthly budget has room for one more ($0.08 of $0.12 spent, $0.072 reserved: no).
    const other = await t.createKey();
    expect(
      (await t.post('/v1/chat/completions', ask('d'), other.key, { 'x-flowloom-job': 'hourly' })).status,
    ).toBe(200);
  });

  it('when a key spends its monthly budget, then it is refused until the first of next month', async () => {
    const { key } = await t.createKey();
    await spendTwiceThenRefused(key, {}, /key .+, per month, \$0\.12/);
    const refused = await t.post('/v1/chat/completions', ask('e'), key);
    const now = new Date();
    const nextMonth = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(Math.abs(Date.now() + retryAfter * 1000 - nextMonth)).toBeLessThan(5_000);
  });

  it('when a team sends more tokens per minute than its limit, then it gets 429 rate_limited until the window moves', async () => {
    const { key } = await t.createKey({ team: 'ops' });
    // A request counts its 32 estimated input tokens up front, then its real 40 once answered: 40 + 32 > 50.
    expect((await t.post('/v1/chat/completions', ask('a'), key)).status).toBe(200);
    const limited = await t.post('/v1/chat/completions', ask('b'), key);
    expect(limited.status).toBe(429);
    const error = (limited.body as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('rate_limited');
    expect(error.message).toMatch(/team ops: 50 tokens per minute/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

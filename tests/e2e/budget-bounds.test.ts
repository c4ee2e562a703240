import { randomUUID } from 'node:crypto';
import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from '../fakes/index.js';
import {
  bodyOf,
  COMPLETED,
  delay,
  FAILED,
  modelCalls,
  resetAndCloseAfterSuite,
  startClaudeBehindGateway,
} from './helpers.js';

/**
 * A budget's reservation is a true worst case: a request without max_tokens goes upstream bounded by
 * the output reserved for it, its input estimate counts tools, tool calls and images at an upper bound,
 * and streamed answers (finished or cancelled) settle at what they really cost.
 */
const OPENAI_KEY = 'sk-fake-openai-upstream-budget-bounds-0123456789';
// $10 per million tokens in and out: one output token is 10 micro-dollars.
const PRICE = { input: 10, output: 10 };
const DEFAULT_ALLOWANCE = 4096;
const LONG_ANSWER = 50_000;

const budgetKey = (project: string) => `budget:project:${project}:total:all`;
const micros = (usd: number) => Math.round(usd * 1e6);

describe.each([
  ['in-process', {}],
  ['Redis', { redisUrl: 'redis://127.0.0.1:6379' }],
])('budget reservations bound the upstream call (%s)', (_mode, store) => {
  let fake: FakeProvider;
  let t: TestGateway;
  const project = `bounded-${randomUUID()}`;
  const small = `small-${randomUUID()}`;
  const cjk = `cjk-${randomUUID()}`;

  beforeAll(async () => {
    fake = await startFakeProvider({ kind: 'openai', apiKey: OPENAI_KEY });
    t = await startTestGateway({
      overrides: {
        ...store,
        providers: { openai: { kind: 'openai', baseUrl: `${fake.url}/v1`, apiKey: OPENAI_KEY } },
        models: {
          chat: { deployments: [{ provider: 'openai', model: 'gpt-4o-mini' }] },
          short: { deployments: [{ provider: 'openai', model: 'gpt-4o-mini', maxOutputTokens: 500 }] },
        },
        prices: { 'gpt-4o-mini': PRICE },
        routing: { maxAttempts: 1 },
        budgets: [
          { scope: 'project', id: project, period: 'total', limitUsd: 0.1 },
          { scope: 'project', id: small, period: 'total', limitUsd: 0.05 },
          { scope: 'project', id: cjk, period: 'total', limitUsd: 0.1 },
        ],
      },
    });
  });
  resetAndCloseAfterSuite(() => ({ gateway: t, fakes: [fake] }));

  const ask = { model: 'chat', messages: [{ role: 'user', content: 'Write a very long essay.' }] };

  it('when long answers race for a small budget without max_tokens, then each goes upstream bounded by its reservation and the spend overshoots by at most one reservation', async () => {
    const { key } = await t.createKey({ project });
    fake.setDefault({
      kind: 'reply',
      text: 'word '.repeat(1_000),
      usage: { input: 20, output: LONG_ANSWER },
      honourMaxTokens: true,
      delayMs: 150,
    });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => t.post('/v1/chat/completions', ask, key)),
    );
    const answered = results.filter((r) => r.status === 200).length;
    expect(answered).toBeGreaterThanOrEqual(1);
    for (const r of results) if (r.status !== 200) expect(r.status).toBe(429);
    const calls = modelCalls(fake);
    expect(calls).toHaveLength(answered);
    for (const call of calls) expect(bodyOf(call).max_completion_tokens).toBe(DEFAULT_ALLOWANCE);
    // The worst case: ~7 input tokens and the whole allowance, at $10 per million each.
    const reservation = (10 + DEFAULT_ALLOWANCE) * PRICE.output;
    const spent = await t.gateway.limitCounter(budgetKey(project));
    expect(spent).toBeLessThanOrEqual(micros(0.1) + reservation);
    expect(spent).toBe(answered * (20 + DEFAULT_ALLOWANCE) * PRICE.output);
  });

  it('when CJK prompts race for a budget, then each reserves at least what the provider bills for its input, so together they cannot overshoot it', async () => {
    const { key } = await t.createKey({ project: cjk });
    // 1,800 characters that cl100k_base counts as 1,800 tokens (one a character; 4 characters a token
    // would have reserved 450), billed with the chat format's few tokens of overhead.
    const prompt = '预算在调用之前预留，在调用之后结算。'.repeat(100);
    const billed = { input: 1_810, output: 10 };
    fake.setDefault({ kind: 'reply', text: '好', usage: billed, delayMs: 150 });
    const body = { model: 'chat', max_tokens: 10, messages: [{ role: 'user', content: prompt }] };
    const results = await Promise.all(
      Array.from({ length: 8 }, () => t.post('/v1/chat/completions', body, key)),
    );
    const answered = results.filter((r) => r.status === 200).length;
    expect(answered).toBeGreaterThanOrEqual(1);
    for (const r of results) if (r.status !== 200) expect(r.status).toBe(429);
    const bill = (billed.input + billed.output) * PRICE.input;
    const spent = await t.gateway.limitCounter(budgetKey(cjk));
    expect(spent).toBe(answered * bill);
    // Had each reserved less than its bill, all eight would have been let in: $0.146 against $0.10.
    expect(spent).toBeLessThanOrEqual(micros(0.1));
  });

  it("when the caller sets max_tokens, then it goes upstream unchanged; a deployment's maxOutputTokens bounds the default; without a budget nothing is added", async () => {
    const { key } = await t.createKey({ project: `other-${randomUUID()}` });
    const { key: bounded } = await t.createKey({ project: small });
    fake.setDefault({ kind: 'reply', text: 'ok', usage: { input: 5, output: 5 } });
    expect((await t.post('/v1/chat/completions', { ...ask, max_tokens: 30 }, bounded)).status).toBe(200);
    expect(bodyOf(modelCalls(fake)[0]!).max_completion_tokens).toBe(30);
    expect((await t.post('/v1/chat/completions', { ...ask, model: 'short' }, bounded)).status).toBe(200);
    expect(bodyOf(modelCalls(fake)[1]!).max_completion_tokens).toBe(500);
    expect((await t.post('/v1/chat/completions', ask, key)).status).toBe(200);
    expect(bodyOf(modelCalls(fake)[2]!)).not.toHaveProperty('max_completion_tokens');
  });

  it('when tool schemas, tool-call arguments or images make the input exceed the budget, then the request is refused before any upstream call', async () => {
    const { key } = await t.createKey({ project: small });
    const big = 'x'.repeat(24_000); // ~6,000 tokens: $0.06 of input against $0.05
    const tool = {
      ...ask,
      max_tokens: 1,
      tools: [
        { type: 'function', function: { name: 'f', description: big, parameters: { type: 'object' } } },
      ],
    };
    const toolCall = {
      model: 'chat',
      max_tokens: 1,
      messages: [
        { role: 'user', content: 'go' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: big } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'done' },
      ],
    };
    const image = { type: 'image_url', image_url: { url: 'https://example.com/a.png' } };
    const images = {
      model: 'chat',
      max_tokens: 1,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'describe' }, image, image] }],
    };
    for (const body of [tool, toolCall, images]) {
      const refused = await t.post('/v1/chat/completions', body, key);
      expect(refused.status).toBe(429);
      expect((refused.body as { error: { code: string } }).error.code).toBe('budget_exceeded');
    }
    expect(modelCalls(fake)).toHaveLength(0);
  });
});

describe('streamed answers settle their budget at the actual cost', () => {
  let fake: FakeProvider;
  let t: TestGateway;

  beforeAll(async () => {
    fake = await startFakeProvider({ kind: 'openai', apiKey: OPENAI_KEY });
    t = await startTestGateway({
      overrides: {
        providers: { openai: { kind: 'openai', baseUrl: `${fake.url}/v1`, apiKey: OPENAI_KEY } },
        models: { chat: { deployments: [{ provider: 'openai', model: 'gpt-4o-mini' }] } },
        prices: { 'gpt-4o-mini': PRICE },
        routing: { maxAttempts: 1 },
        budgets: [{ scope: 'project', period: 'total', limitUsd: 1 }],
      },
    });
  });
  resetAndCloseAfterSuite(() => ({ gateway: t, fakes: [fake] }));

  const streamed = { model: 'chat', stream: true, messages: [{ role: 'user', content: 'Tell a story.' }] };

  async function eventOf(type: string, keyId: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 120; i++) {
      const found = (await t.events()).find((e) => e.type === type && e.data.keyId === keyId);
      if (found) return found.data;
      await delay(25);
    }
    throw new Error(`no ${type} event for key ${keyId}`);
  }

  it('when a stream completes, then the spent counter is its reported cost, not the reservation', async () => {
    const project = `stream-${randomUUID()}`;
    const { key, id } = await t.createKey({ project });
    fake.script({ kind: 'reply', text: 'once upon a time', usage: { input: 20, output: 300 } });
    const answer = await t.post('/v1/chat/completions', streamed, key);
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('[DONE]');
    const event = await eventOf(COMPLETED, id);
    expect(micros(Number(event.costUsd))).toBe((20 + 300) * PRICE.output);
    expect(await t.gateway.limitCounter(budgetKey(project))).toBe((20 + 300) * PRICE.output);
  });

  it('when the client cancels mid-stream, then the spent counter is the cost recorded for what was streamed', async () => {
    const project = `cancel-${randomUUID()}`;
    const { key, id } = await t.createKey({ project });
    const chunks = Array.from({ length: 200 }, (_, i) => `word${i} `);
    fake.script({ kind: 'reply', chunks, usage: { input: 20, output: 300 }, chunkDelayMs: 20 });
    const controller = new AbortController();
    const response = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(streamed),
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    let seen = '';
    while (!seen.includes('word3 ')) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const event = await eventOf(FAILED, id);
    expect(event.errorCode).toBe('client_closed');
    const cost = micros(Number(event.costUsd));
    expect(cost).toBeGreaterThan(0);
    expect(cost).toBeLessThan((20 + 300) * PRICE.output);
    expect(await t.gateway.limitCounter(budgetKey(project))).toBe(cost);
  });
});

describe('the output bound leaves room for a thinking budget', () => {
  const ANTHROPIC_KEY = 'sk-ant-fake-upstream-budget-bounds-0123456789';
  let fake: FakeProvider;
  let t: TestGateway;

  beforeAll(async () => {
    ({ fake, gateway: t } = await startClaudeBehindGateway(ANTHROPIC_KEY, {
      budgets: [{ scope: 'key', period: 'total', limitUsd: 5 }],
      defaultMaxOutputTokens: 1000,
    }));
  });
  resetAndCloseAfterSuite(() => ({ gateway: t, fakes: [fake] }));

  it('when a budgeted caller asks for a thinking budget without an output limit, then the upstream max_tokens is defaultMaxOutputTokens on top of it', async () => {
    const { key } = await t.createKey();
    const res = await t.post(
      '/v1beta/models/claude:generateContent',
      {
        contents: [{ role: 'user', parts: [{ text: 'Think, then answer.' }] }],
        generationConfig: { thinkingConfig: { thinkingBudget: 2000 } },
      },
      key,
    );
    expect(res.status, res.text).toBe(200);
    const body = bodyOf(modelCalls(fake)[0]!);
    expect(body.max_tokens).toBe(1000 + 2000);
    expect(body.thinking).toMatchObject({ type: 'enabled', budget_tokens: 2000 });
  });
});

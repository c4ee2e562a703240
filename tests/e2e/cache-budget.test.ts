import Anthropic from '@anthropic-ai/sdk';
import type { TestGateway } from '@flowloom/gateway/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider, FakeUsage } from '../fakes/index.js';
import { COMPLETED, modelCalls, resetAndCloseAfterSuite, startClaudeBehindGateway } from './helpers.js';

/**
 * Prompt-cache writes cost more than plain input (claude-sonnet-4: $3 per million input, $6 for a
 * one-hour write), so a budget's worst-case reservation must price a request with breakpoints at the
 * write rate; otherwise concurrent requests can overspend it by far more than one reservation.
 */
const ANTHROPIC_KEY = 'sk-ant-fake-upstream-cache-budget-0123456789';
const MAX_TOKENS = 100;
const MANUAL = 'x'.repeat(40_000);
// The gateway estimates 4 characters a token plus 4 per message: 10,001 + 8.
const ESTIMATED_INPUT = 10_009;
// A first request writes its whole prompt to the cache for an hour and uses its whole output allowance.
const WRITES_ALL: FakeUsage = {
  input: ESTIMATED_INPUT,
  cacheWrite: ESTIMATED_INPUT,
  cacheWrite1h: ESTIMATED_INPUT,
  output: MAX_TOKENS,
};
// $0.060054 + $0.0015; without the premium only $0.030027 + $0.0015 would have been reserved.
const BILL_USD = (ESTIMATED_INPUT * 6 + MAX_TOKENS * 15) / 1e6;
const PLAIN_RESERVATION_USD = (ESTIMATED_INPUT * 3 + MAX_TOKENS * 15) / 1e6;

let fake: FakeProvider;
let t: TestGateway;

beforeAll(async () => {
  ({ fake, gateway: t } = await startClaudeBehindGateway(ANTHROPIC_KEY, {
    budgets: [
      // Between the old reservation and the real bill.
      { scope: 'project', id: 'single', period: 'total', limitUsd: 0.05 },
      // Room for four old reservations, but for two real bills only.
      { scope: 'project', id: 'race', period: 'total', limitUsd: 0.13 },
    ],
  }));
});

resetAndCloseAfterSuite(() => ({ gateway: t, fakes: [fake] }));

async function clientFor(project: string): Promise<{ client: Anthropic; keyId: string }> {
  const { key, id } = await t.createKey({ name: `cache-budget-${project}`, project });
  return {
    client: new Anthropic({ baseURL: t.url, apiKey: key, maxRetries: 0, timeout: 10_000 }),
    keyId: id,
  };
}

const cached = (ttl: '1h') =>
  ({
    model: 'claude',
    max_tokens: MAX_TOKENS,
    system: [{ type: 'text', text: MANUAL, cache_control: { type: 'ephemeral', ttl } }],
    messages: [{ role: 'user', content: 'Hi' }],
  }) satisfies Anthropic.MessageCreateParamsNonStreaming;

describe('budget reservations and prompt-cache writes', () => {
  it('when the cache-write premium makes the worst case exceed the budget, then the request is refused up front, and the same prompt without breakpoints is admitted', async () => {
    expect(PLAIN_RESERVATION_USD).toBeLessThan(0.05);
    const { client } = await clientFor('single');
    const refused = await client.messages.create(cached('1h')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(Anthropic.RateLimitError);
    const message = (refused as InstanceType<typeof Anthropic.RateLimitError>).message;
    expect(message).toMatch(/Budget exceeded for project single/);
    const upTo = Number(/may cost up to \$(\d+\.\d+)/.exec(message)?.[1]);
    expect(upTo).toBeGreaterThanOrEqual(Math.floor(BILL_USD * 100) / 100);
    expect(modelCalls(fake)).toHaveLength(0);

    fake.script({ kind: 'reply', usage: { input: ESTIMATED_INPUT, output: MAX_TOKENS } });
    const { system: _breakpoints, ...withoutBreakpoints } = cached('1h');
    const answer = await client.messages.create({
      ...withoutBreakpoints,
      system: [{ type: 'text', text: MANUAL }],
    });
    expect(answer.type).toBe('message');
  });

  it('when requests that write the cache race for a budget, then what they spend stays within it', async () => {
    const { client, keyId } = await clientFor('race');
    fake.setDefault({ kind: 'reply', usage: WRITES_ALL, delayMs: 200 });
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, () => client.messages.create(cached('1h'))),
    );
    const answered = results.filter((r) => r.status === 'fulfilled');
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(Anthropic.RateLimitError);
    expect(answered.length).toBeGreaterThanOrEqual(1);
    const spent = (await t.events())
      .filter((e) => e.type === COMPLETED && e.data.keyId === keyId)
      .reduce((sum, e) => sum + Number(e.data.costUsd), 0);
    expect(spent).toBeCloseTo(answered.length * BILL_USD, 9);
    expect(spent).toBeLessThanOrEqual(0.13);
  });
});

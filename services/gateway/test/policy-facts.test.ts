import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import { expectOpenAIError } from './http-helpers.js';
import { chat, decisionOf, type PolicyGateway, startPolicyGateway, testPostgres } from './policy-helpers.js';

// The facts the gateway fills in for policies, end to end: each rule reads one of them and matches
// only on the value the gateway should have computed for the request, and the decision record shows
// the value it read. The request: one deployment (provider local, region eu-west) priced at $1,000 /
// $2,000 per million input / output tokens, "facts please" (12 characters: 3 tokens + 4 for the
// message = 7 estimated), max_tokens 50, so its worst case is 7 × 0.001 + 50 × 0.002 = $0.107; its
// key is alice's, a member of team x-team, whose $1 budget has already paid $0.07 (10 + 30 tokens).

/** One alerting rule per fact, matching only on the value expected for the first test's request. */
const FACT_RULES: Record<string, string> = {
  team: 'caller.team == "x-team"',
  role: 'caller.role == "member"',
  owner: 'caller.owner == "alice"',
  region: 'request.region == "eu-west"',
  provider: 'request.provider == "local"',
  cost: 'request.cost > 0.1069 && request.cost < 0.1071',
  tokens: 'request.estimated_tokens == 7.0',
  remaining: 'budget.remaining > 0.9299 && budget.remaining < 0.9301',
  limit: 'budget.limit == 1.0',
};
const ALL_FACT_RULES = Object.keys(FACT_RULES);

const FACTS = `name: facts
rules:
${Object.entries(FACT_RULES)
  .map(([id, condition]) => `  - id: ${id}\n    condition: ${condition}\n    action: alert\n`)
  .join('')}  - id: frozen-team
    condition: caller.team == "frozen"
    action: block
    message: team frozen may not call models
`;

const OVERRIDES = {
  models: {
    facts: { deployments: [{ provider: 'local', model: 'flowloom-local', region: 'eu-west' }] },
  },
  prices: { 'flowloom-local': { input: 1000, output: 2000 } },
  budgets: [
    { scope: 'team', id: 'x-team', period: 'total', limitUsd: 1 },
    { scope: 'team', id: 'frozen', period: 'total', limitUsd: 1 },
  ],
};

const ask = (content: string) => ({
  model: 'facts',
  max_tokens: 50,
  messages: [{ role: 'user', content }],
});

let pg: TestDatabase;
let t: PolicyGateway;

beforeAll(async () => {
  pg = await testPostgres();
  t = await startPolicyGateway(FACTS, { overrides: OVERRIDES, db: pg.db });
});
afterAll(async () => {
  await t?.close();
  await pg?.drop();
});

/** The first evaluation of a decision: rules matched and the input values read. */
async function evaluated(decisionId: string | null) {
  const decision = await decisionOf(t, decisionId);
  const [evaluation] = decision.evaluations as Array<{ matched: string[]; inputs: Record<string, unknown> }>;
  return evaluation!;
}

describe('the facts the gateway gives policies', () => {
  it('when a request is decided, then every caller, request and budget fact has the value computed for it, and the decision shows each', async () => {
    const key = (await t.createKey({ name: 'facts', owner: 'alice', team: 'x-team' })).key;
    const spent = await t.post(
      '/v1/chat/completions',
      {
        ...chat('spend', { reply: 'ok', inputTokens: 10, outputTokens: 30 }),
        model: 'facts',
        max_tokens: 50,
      },
      key,
    );
    expect(spent.status, spent.text).toBe(200);

    const res = await t.post('/v1/chat/completions', ask('facts please'), key);
    expect(res.status, res.text).toBe(200);
    const evaluation = await evaluated(res.headers.get('x-flowloom-decision'));
    expect(evaluation.inputs).toMatchObject({
      'caller.team': 'x-team',
      'caller.role': 'member',
      'caller.owner': 'alice',
      'request.region': 'eu-west',
      'request.provider': 'local',
      'request.estimated_tokens': 7,
      'budget.limit': 1,
    });
    expect(evaluation.inputs['request.cost']).toBeCloseTo(0.107, 9);
    expect(evaluation.inputs['budget.remaining']).toBeCloseTo(0.93, 9);
    expect([...evaluation.matched].sort()).toEqual([...ALL_FACT_RULES].sort());
  });

  it('when another caller sends a different request, then the facts change with it and the rules no longer match', async () => {
    const key = (await t.createKey({ name: 'other', owner: 'bob', team: 'y-team' })).key;
    const res = await t.post(
      '/v1/chat/completions',
      {
        model: 'flowloom-local',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'a longer prompt here' }],
      },
      key,
    );
    expect(res.status, res.text).toBe(200);
    const evaluation = await evaluated(res.headers.get('x-flowloom-decision'));
    expect(evaluation.inputs).toMatchObject({
      'caller.owner': 'bob',
      'caller.team': 'y-team',
      'request.estimated_tokens': 9,
    });
    // No budget applies to team y-team.
    expect(evaluation.matched).toEqual(['role', 'provider']);
  });

  it('when a rule blocks on caller.team, then only that team is refused, reading why', async () => {
    const key = (await t.createKey({ name: 'frozen', owner: 'carol', team: 'frozen' })).key;
    const res = await t.post('/v1/chat/completions', ask('facts please'), key);
    const error = expectOpenAIError(res, 403, 'policy_blocked');
    expect(error.message).toContain('team frozen may not call models');
    const evaluation = await evaluated(res.headers.get('x-flowloom-decision'));
    expect(evaluation.inputs['caller.team']).toBe('frozen');
    expect(evaluation.matched).toContain('frozen-team');
  });
});

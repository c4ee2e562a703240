import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, decisionOf, type PolicyGateway, startPolicyGateway } from './policy-helpers.js';

const POLICY = `
name: routing-and-depth
rules:
  - id: pinned
    condition: request.job == "pinned"
    action: { type: reroute, deployment: local/flowloom-local@eu }
  - id: deep-agent
    condition: signals.tool_call_depth >= 3
    action: block
    message: the agent is too deep into tool calls
`;

const MODELS = {
  models: {
    spread: {
      deployments: [
        { provider: 'local', model: 'flowloom-local', region: 'us' },
        { provider: 'local', model: 'flowloom-local', region: 'eu' },
      ],
    },
  },
};

/** A conversation whose last `rounds` assistant turns each called a tool since the user spoke. */
function agentTurns(rounds: number) {
  const messages: unknown[] = [{ role: 'user', content: 'find it' }];
  for (let i = 0; i < rounds; i++) {
    messages.push({
      role: 'assistant',
      content: null,
      tool_calls: [{ id: `c${i}`, type: 'function', function: { name: 'search', arguments: '{}' } }],
    });
    messages.push({ role: 'tool', tool_call_id: `c${i}`, content: 'nothing yet' });
  }
  return { model: 'flowloom-local', messages };
}

let t: PolicyGateway;
let key: string;
beforeAll(async () => {
  t = await startPolicyGateway(POLICY, { overrides: MODELS });
  key = (await t.createKey({ name: 'member' })).key;
});
afterAll(async () => t?.close());

describe('reroute by deployment and tool-call depth', () => {
  it('when a rule reroutes to a deployment id, then that deployment answers every time', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await t.post('/v1/chat/completions', { ...chat('x'), model: 'spread' }, key, {
        'x-flowloom-job': 'pinned',
      });
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get('x-flowloom-deployment')).toBe('local/flowloom-local@eu');
    }
  });

  it('when an agent is three tool-call rounds deep since the last user message, then the depth rule blocks it; two rounds, or a new user message, pass', async () => {
    expect((await t.post('/v1/chat/completions', agentTurns(2), key)).status).toBe(200);
    const deep = await t.post('/v1/chat/completions', agentTurns(3), key);
    expect(deep.status).toBe(403);
    expect((deep.body as { error: { message: string } }).error.message).toMatch(/too deep into tool calls/);
    const decision = await decisionOf(t, deep.headers.get('x-flowloom-decision'));
    expect(decision).toMatchObject({ signals: { tool_call_depth: 3 } });
    const restarted = agentTurns(3);
    restarted.messages.push({ role: 'user', content: 'try again' });
    expect((await t.post('/v1/chat/completions', restarted, key)).status).toBe(200);
  });
});

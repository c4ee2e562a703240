import { describe, expect, it } from 'vitest';
import { explainDecision, ruleInputs } from '../explain.js';
import type { EvaluationInput } from '../input.js';
import { redactText } from '../redact/redact.js';
import { policyFrom, rulesYaml } from '../test-support.js';
import { evaluatePolicy } from './evaluate.js';

const calm: EvaluationInput = {
  request: { model: 'gpt-4o', job: 'agent-7', estimated_tokens: 1200, max_tokens: 8000, headers: {} },
  caller: { key_id: 'key-1', team: 'ml', role: 'developer' },
  signals: { repeated_prompts: 1, error_rate: 0.01 },
};
const looping: EvaluationInput = {
  ...calm,
  signals: { repeated_prompts: 12, error_rate: 0.6, spend_per_minute: 40 },
};

describe('evaluatePolicy: each action', () => {
  it('when no rule matches, then the default allow applies with no deciding rule', () => {
    const policy = policyFrom(
      rulesYaml(`{ id: loops, condition: 'signals.repeated_prompts > 5', action: block }`),
    );
    const d = evaluatePolicy(policy, calm);
    expect(d.intended).toEqual({ verdict: 'allow', decidedBy: null, actions: [] });
    expect(d.effective).toEqual(d.intended);
    expect(d.rules.map((r) => [r.id, r.matched])).toEqual([['loops', false]]);
  });

  it('when an allow rule matches, then the verdict is allow decided by that rule', () => {
    const policy = policyFrom(rulesYaml(`{ id: admins, condition: 'caller.team == "ml"', action: allow }`));
    expect(evaluatePolicy(policy, calm).intended).toMatchObject({ verdict: 'allow', decidedBy: 'admins' });
  });

  it('when a block rule matches, then the caller gets its message, or a default naming the policy and rule', () => {
    const custom = policyFrom(
      rulesYaml(
        `{ id: loops, condition: 'signals.repeated_prompts > 5', action: block, message: 'you are looping' }`,
      ),
    );
    expect(evaluatePolicy(custom, looping).effective).toMatchObject({
      verdict: 'block',
      message: 'you are looping',
    });
    const plain = policyFrom(
      rulesYaml(`{ id: loops, condition: 'signals.repeated_prompts > 5', action: block }`),
    );
    expect(evaluatePolicy(plain, looping).effective.message).toBe(
      'request refused by policy "test" (rule "loops")',
    );
  });

  it('when throttle rules match, then the delay or queue parameters are carried in the action', () => {
    const delay = policyFrom(
      rulesYaml(
        `{ id: slow, condition: 'signals.error_rate > 0.5', action: { type: throttle, delayMs: 750 } }`,
      ),
    );
    expect(evaluatePolicy(delay, looping).effective.actions).toEqual([
      { ruleId: 'slow', action: { type: 'throttle', delayMs: 750 } },
    ]);
    const queue = policyFrom(
      rulesYaml(
        `{ id: q, condition: 'signals.error_rate > 0.5', action: { type: throttle, queue: true, maxWaitMs: 3000 } }`,
      ),
    );
    expect(evaluatePolicy(queue, looping).effective).toMatchObject({
      verdict: 'throttle',
      actions: [{ action: { type: 'throttle', queue: true, maxWaitMs: 3000 } }],
    });
  });

  it('when a reroute rule matches, then the target model, deployment and region are in the action', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: cheap, condition: 'request.model == "gpt-4o"', action: { type: reroute, model: gpt-4o-mini, region: eu-west-1 } }`,
      ),
    );
    expect(evaluatePolicy(policy, calm).effective).toMatchObject({
      verdict: 'reroute',
      actions: [{ ruleId: 'cheap', action: { type: 'reroute', model: 'gpt-4o-mini', region: 'eu-west-1' } }],
    });
  });

  it('when a redact rule matches, then the request is allowed and the redaction can be applied to the prompt', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: pii, condition: 'true', action: { type: redact, patterns: [email, { regex: "ticket-\\\\d+" }] } }`,
      ),
    );
    const d = evaluatePolicy(policy, calm);
    expect(d.effective.verdict).toBe('allow');
    const redactions = d.effective.actions.flatMap((a) => (a.action.type === 'redact' ? [a.action] : []));
    expect(redactText('mail ann@example.com about ticket-42', redactions)).toEqual({
      text: 'mail [REDACTED] about [REDACTED]',
      count: 2,
    });
  });

  it('when cap_max_tokens rules match, then the smallest cap is the one applied', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: cap-big, condition: 'request.max_tokens > 4000', action: { type: cap_max_tokens, value: 4000 } }`,
        `{ id: cap-small, condition: 'caller.role != "admin"', action: { type: cap_max_tokens, value: 1024 } }`,
      ),
    );
    const d = evaluatePolicy(policy, calm);
    expect(d.effective.actions).toEqual([
      { ruleId: 'cap-small', action: { type: 'cap_max_tokens', value: 1024 } },
    ]);
    expect(d.rules.every((r) => r.matched)).toBe(true);
  });

  it('when alert rules match, then every alert is kept with its channel', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: a1, condition: 'signals.spend_per_minute > 10', action: { type: alert, channel: "#spend" } }`,
        `{ id: a2, condition: 'signals.error_rate > 0.5', action: alert }`,
      ),
    );
    expect(evaluatePolicy(policy, looping).effective).toEqual({
      verdict: 'allow',
      decidedBy: null,
      actions: [
        { ruleId: 'a1', action: { type: 'alert', channel: '#spend' } },
        { ruleId: 'a2', action: { type: 'alert' } },
      ],
    });
  });

  it('when suspend_key or stop_job matches, then the request is refused and the message says what else happened', () => {
    const suspend = policyFrom(
      rulesYaml(`{ id: depth, condition: 'signals.repeated_prompts > 5', action: suspend_key }`),
    );
    expect(evaluatePolicy(suspend, looping).effective).toMatchObject({
      verdict: 'suspend_key',
      message: 'request refused by policy "test" (rule "depth"); the API key is suspended',
    });
    const stop = policyFrom(
      rulesYaml(`{ id: runaway, condition: 'signals.repeated_prompts > 5', action: stop_job }`),
    );
    expect(evaluatePolicy(stop, looping).effective).toMatchObject({
      verdict: 'stop_job',
      message: 'request refused by policy "test" (rule "runaway"); the job is stopped',
    });
  });
});

describe('evaluatePolicy: conflict resolution', () => {
  it('when a block matches alongside a higher-priority allow, then block still wins', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: vip, priority: 100, condition: 'caller.team == "ml"', action: allow }`,
        `{ id: loops, priority: 1, condition: 'signals.repeated_prompts > 5', action: block }`,
      ),
    );
    expect(evaluatePolicy(policy, looping).effective).toMatchObject({ verdict: 'block', decidedBy: 'loops' });
    expect(evaluatePolicy(policy, calm).effective).toMatchObject({ verdict: 'allow', decidedBy: 'vip' });
  });

  it('when several deny actions match, then the most severe is carried out whatever the priorities', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: b, priority: 50, condition: 'true', action: block }`,
        `{ id: s, priority: 0, condition: 'true', action: stop_job }`,
        `{ id: k, priority: 90, condition: 'true', action: suspend_key }`,
      ),
    );
    expect(evaluatePolicy(policy, calm).effective).toMatchObject({ verdict: 'stop_job', decidedBy: 's' });
  });

  it('when exclusive rules match at several priorities, then the highest priority wins, then document order', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: low, priority: 1, condition: 'true', action: { type: reroute, model: a } }`,
        `{ id: high-first, priority: 5, condition: 'true', action: { type: throttle, delayMs: 10 } }`,
        `{ id: high-second, priority: 5, condition: 'true', action: { type: reroute, model: b } }`,
      ),
    );
    const d = evaluatePolicy(policy, calm);
    expect(d.effective.decidedBy).toBe('high-first');
    expect(d.rules.map((r) => r.id)).toEqual(['high-first', 'high-second', 'low']);
  });

  it('when a higher-priority allow matches, then it exempts from lower-priority throttles', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: slow-all, priority: 1, condition: 'true', action: { type: throttle, delayMs: 100 } }`,
        `{ id: exempt-ml, priority: 10, condition: 'caller.team == "ml"', action: allow }`,
      ),
    );
    expect(evaluatePolicy(policy, calm).effective).toMatchObject({
      verdict: 'allow',
      decidedBy: 'exempt-ml',
    });
    const other = { ...calm, caller: { team: 'web' } };
    expect(evaluatePolicy(policy, other).effective).toMatchObject({
      verdict: 'throttle',
      decidedBy: 'slow-all',
    });
  });

  it('when deny rules of equal severity match, then the higher priority decides, then document order', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: first-low, priority: 1, condition: 'true', action: block, message: low }`,
        `{ id: high, priority: 7, condition: 'true', action: block, message: high }`,
        `{ id: high-later, priority: 7, condition: 'true', action: block }`,
      ),
    );
    expect(evaluatePolicy(policy, calm).effective).toMatchObject({ decidedBy: 'high', message: 'high' });
  });

  it('when the request is refused, then alerts still fire but redactions and caps are dropped', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: stop, condition: 'signals.repeated_prompts > 5', action: block }`,
        `{ id: page, condition: 'true', action: { type: alert, channel: oncall } }`,
        `{ id: pii, condition: 'true', action: { type: redact, patterns: [email] } }`,
        `{ id: cap, condition: 'true', action: { type: cap_max_tokens, value: 100 } }`,
      ),
    );
    expect(evaluatePolicy(policy, looping).effective.actions.map((a) => a.ruleId)).toEqual(['stop', 'page']);
    expect(evaluatePolicy(policy, calm).effective.actions.map((a) => a.ruleId)).toEqual([
      'page',
      'pii',
      'cap',
    ]);
  });

  it('when an exclusive action and combinable actions match, then they combine with the exclusive one first', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: pii, priority: 9, condition: 'true', action: { type: redact, patterns: [api_key] } }`,
        `{ id: cheap, condition: 'true', action: { type: reroute, deployment: small } }`,
      ),
    );
    expect(evaluatePolicy(policy, calm).effective).toMatchObject({
      verdict: 'reroute',
      actions: [{ ruleId: 'cheap' }, { ruleId: 'pii' }],
    });
  });
});

describe('evaluatePolicy: evaluation errors', () => {
  it('when a block rule divides by zero, then by default it fails closed and the error is recorded', () => {
    const policy = policyFrom(rulesYaml(`{ id: broken, condition: '1 / 0 > 0', action: block }`));
    const d = evaluatePolicy(policy, calm);
    expect(d.effective.verdict).toBe('block');
    expect(d.errors).toEqual([
      { ruleId: 'broken', message: 'divide by zero', onError: 'closed', treatedAs: 'match' },
    ]);
    expect(d.rules[0]).toMatchObject({ matched: true, error: 'divide by zero', onError: 'closed' });
  });

  it('when a block rule with onError open fails, then it does not match', () => {
    const policy = policyFrom(
      rulesYaml(`{ id: broken, condition: '1 / 0 > 0', action: block, onError: open }`),
    );
    const d = evaluatePolicy(policy, calm);
    expect(d.effective.verdict).toBe('allow');
    expect(d.errors[0]).toMatchObject({ treatedAs: 'no_match', onError: 'open' });
  });

  it('when a rule reads a missing header, then an alert rule fails open and a stop_job rule fails closed', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: tagged, condition: 'request.headers["x-team"] == "ml"', action: alert }`,
        `{ id: guard, condition: 'request.headers["x-budget-ok"] != "yes"', action: stop_job }`,
      ),
    );
    const d = evaluatePolicy(policy, calm);
    expect(d.errors.map((e) => [e.ruleId, e.treatedAs])).toEqual([
      ['tagged', 'no_match'],
      ['guard', 'match'],
    ]);
    expect(d.effective.verdict).toBe('stop_job');
    expect(d.errors[0]?.message).toBe('no such key: x-team');
  });

  it('when the input holds a wrong type, then rules reading it fail per onError and the value reads as null', () => {
    const policy = policyFrom(
      rulesYaml(`{ id: big, condition: 'request.estimated_tokens > 1000', action: block }`),
    );
    const bad = { request: { estimated_tokens: '5000' } } as unknown as EvaluationInput;
    const d = evaluatePolicy(policy, bad);
    expect(d.effective.verdict).toBe('block');
    expect(d.errors[0]?.message).toContain('request.estimated_tokens: expected a number');
    expect(d.inputs).toEqual({ 'request.estimated_tokens': null });
  });

  it('when a condition reads time without "now" in the input, then that is an evaluation error', () => {
    const policy = policyFrom(rulesYaml(`{ id: night, condition: 'time.hour < 6', action: alert }`));
    expect(evaluatePolicy(policy, calm).errors[0]?.message).toBe(
      'time.hour needs "now" in the evaluation input',
    );
    const at3am = { ...calm, now: Date.UTC(2025, 0, 1, 3, 15) };
    const d = evaluatePolicy(policy, at3am);
    expect(d.effective.actions).toHaveLength(1);
    expect(d.evaluatedAt).toBe(at3am.now);
  });
});

describe('evaluatePolicy: explanations', () => {
  const policy = policyFrom(
    rulesYaml(
      `{ id: loops, condition: 'signals.repeated_prompts > 5 && has(request.job)', action: stop_job }`,
      `{ id: auth, condition: 'request.headers["authorization"].startsWith("Bearer")', action: alert }`,
      `{ id: proj, condition: 'request.headers["x-flowloom-project"] == "alpha" && size(request.headers) > 0', action: alert }`,
    ),
  );
  const input: EvaluationInput = {
    ...looping,
    request: {
      ...looping.request,
      headers: { authorization: 'Bearer sk-secret', 'x-flowloom-project': 'alpha' },
    },
  };

  it('when a decision is made, then it records every referenced input value, with credentials redacted', () => {
    const d = evaluatePolicy(policy, input);
    expect(d.inputs).toEqual({
      'signals.repeated_prompts': 12,
      'request.job': 'agent-7',
      'request.headers["authorization"]': '[redacted]',
      'request.headers["x-flowloom-project"]': 'alpha',
      'request.headers': ['authorization', 'x-flowloom-project'],
    });
    expect(JSON.stringify(d)).not.toContain('sk-secret');
    expect(ruleInputs(d, d.rules[0]!)).toEqual({ 'signals.repeated_prompts': 12, 'request.job': 'agent-7' });
  });

  it('when explained, then matched rules are listed with the values they read', () => {
    const lines = explainDecision(evaluatePolicy(policy, input));
    expect(lines[0]).toMatch(/^test@[0-9a-f]{12} \[enforce\]: stop_job \(rule loops\)$/);
    expect(lines).toContain(
      '  matched loops -> stop_job: signals.repeated_prompts=12, request.job="agent-7"',
    );
  });

  it('when the same input is evaluated twice, or another policy runs in between, then decisions are equal', () => {
    const other = policyFrom(rulesYaml(`{ id: x, condition: '[1, 2].exists(v, v > 1)', action: alert }`));
    const first = evaluatePolicy(policy, input);
    evaluatePolicy(other, calm);
    expect(evaluatePolicy(policy, input)).toEqual(first);
    expect(evaluatePolicy(other, calm).effective.actions).toHaveLength(1);
  });
});

import { describe, expect, it } from 'vitest';
import { formatDiagnostics } from '../document/diagnostics.js';
import { loadPolicy } from '../document/load.js';
import type { EvaluationInput } from '../input.js';
import { policyFrom, rulesYaml } from '../test-support.js';
import { evaluatePolicy } from './evaluate.js';

const request: EvaluationInput['request'] = {
  model: 'gpt-4o',
  key: 'key-1',
  job: 'agent-7',
  estimated_tokens: 50,
};
const long: EvaluationInput = {
  request,
  caller: { key_id: 'key-1', role: 'developer' },
  response: {
    input_tokens: 40,
    output_tokens: 150,
    cost: 0.0021,
    status: 'completed',
    finish_reason: 'length',
  },
};
const short: EvaluationInput = { ...long, response: { ...long.response, output_tokens: 20 } };

const guard = policyFrom(
  rulesYaml(
    `{ id: long-answer, condition: 'response.output_tokens > 100.0', action: suspend_key }`,
    `{ id: big-prompt, condition: 'request.estimated_tokens > 1000.0', action: block }`,
    `{ id: costly, condition: 'response.cost > 0.001', action: { type: alert, channel: ops } }`,
  ),
);

describe('post-call rules: compile', () => {
  it('when a condition reads the answer, then its rule is evaluated after the call, and the policy says so', () => {
    expect(guard.rules.map((r) => [r.rule.id, r.phase])).toEqual([
      ['long-answer', 'post_call'],
      ['big-prompt', 'pre_call'],
      ['costly', 'post_call'],
    ]);
    expect(guard.phases).toEqual(['pre_call', 'post_call']);
    expect(policyFrom(rulesYaml(`{ id: a, condition: 'true', action: block }`)).phases).toEqual(['pre_call']);
  });

  it('when a post-call rule asks for an action that only acts before the call, then each is refused at its line', () => {
    const source = `name: late
rules:
  - id: late-block
    condition: response.output_tokens > 100.0
    action: block
  - id: late-throttle
    condition: request.actual_tokens > 100.0
    action: { type: throttle, delayMs: 500 }
  - id: late-cap
    condition: response.finish_reason == "length"
    action:
      type: cap_max_tokens
      value: 10
  - id: fine
    condition: response.output_tokens > 100.0
    action: stop_job
`;
    const result = loadPolicy(source, { filename: 'late.yaml' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const lines = formatDiagnostics(result.errors).split('\n');
    expect(lines).toEqual([
      'late.yaml:5:13: rules[0].action: block acts before the call, but the condition reads response.output_tokens, known only after the answer; a rule evaluated after the call can only alert, suspend_key, stop_job (to act before the call, compare request.estimated_tokens, request.max_tokens or request.cost instead)',
      expect.stringMatching(
        /^late\.yaml:8:13: rules\[1\]\.action: throttle acts before the call, but the condition reads request\.actual_tokens,/,
      ),
      expect.stringMatching(
        /^late\.yaml:12:7: rules\[2\]\.action: cap_max_tokens acts before the call, but the condition reads response\.finish_reason,/,
      ),
    ]);
  });

  it('when a post-call rule would reroute, redact or allow, then it is refused too', () => {
    for (const action of [
      '{ type: reroute, model: cheap }',
      '{ type: redact, patterns: [email] }',
      'allow',
    ]) {
      const result = loadPolicy(rulesYaml(`{ id: r, condition: 'response.cost > 1.0', action: ${action} }`));
      expect(result.ok ? 'accepted' : formatDiagnostics(result.errors)).toMatch(/acts before the call/);
    }
  });
});

describe('post-call rules: evaluate', () => {
  it('when evaluated before the call, then only pre-call rules run and the decision says which phase', () => {
    const d = evaluatePolicy(guard, { request });
    expect(d.phase).toBe('pre_call');
    expect(d.rules.map((r) => r.id)).toEqual(['big-prompt']);
    expect(d.inputs).toEqual({ 'request.estimated_tokens': 50 });
  });

  it('when an answer is long, then the key is suspended after the call, with the alert and the values read', () => {
    const d = evaluatePolicy(guard, long, { phase: 'post_call' });
    expect(d.phase).toBe('post_call');
    expect(d.rules.map((r) => [r.id, r.matched])).toEqual([
      ['long-answer', true],
      ['costly', true],
    ]);
    expect(d.effective).toEqual({
      verdict: 'suspend_key',
      decidedBy: 'long-answer',
      actions: [
        { ruleId: 'long-answer', action: { type: 'suspend_key' } },
        { ruleId: 'costly', action: { type: 'alert', channel: 'ops' } },
      ],
      message: 'after an answer, policy "test" (rule "long-answer") acted: the API key is suspended',
    });
    expect(d.inputs).toEqual({ 'response.output_tokens': 150, 'response.cost': 0.0021 });
  });

  it('when an answer is short, then nothing but the cost alert applies', () => {
    const d = evaluatePolicy(guard, short, { phase: 'post_call' });
    expect(d.effective.verdict).toBe('allow');
    expect(d.effective.actions.map((a) => a.action.type)).toEqual(['alert']);
  });

  it('when stop_job and suspend_key both match after the call, then the heavier one decides', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: tokens, condition: 'request.actual_tokens >= 190.0', action: suspend_key, priority: 9 }`,
        `{ id: truncated, condition: 'response.finish_reason == "length" && response.status == "completed"', action: stop_job }`,
      ),
    );
    const d = evaluatePolicy(policy, long, { phase: 'post_call' });
    expect(d.intended).toMatchObject({ verdict: 'stop_job', decidedBy: 'truncated' });
    expect(d.intended.message).toMatch(/acted: the job is stopped$/);
    expect(d.inputs['request.actual_tokens']).toBe(190);
  });

  it('when the policy runs in shadow, then the suspension is only intended', () => {
    const d = evaluatePolicy(guard, long, { phase: 'post_call', rollout: { mode: 'shadow' } });
    expect(d.enforced).toBe(false);
    expect(d.intended.verdict).toBe('suspend_key');
    expect(d.effective).toEqual({ verdict: 'allow', decidedBy: null, actions: [] });
  });

  it('when the policy runs in canary, then a subject lands in the same bucket before and after the call', () => {
    for (const percent of [0, 100]) {
      const rollout = { mode: 'canary', percent } as const;
      const before = evaluatePolicy(guard, long, { rollout });
      const after = evaluatePolicy(guard, long, { phase: 'post_call', rollout });
      expect(after.canary).toEqual(before.canary);
      expect(after.enforced).toBe(percent === 100);
      expect(after.effective.verdict).toBe(percent === 100 ? 'suspend_key' : 'allow');
    }
  });

  it('when a post-call condition fails on a malformed answer, then onError decides as before the call', () => {
    const d = evaluatePolicy(
      guard,
      { ...long, response: { output_tokens: '150' } } as unknown as EvaluationInput,
      { phase: 'post_call' },
    );
    expect(d.errors.map((e) => [e.ruleId, e.treatedAs])).toEqual([['long-answer', 'match']]);
    expect(d.intended.verdict).toBe('suspend_key');
  });
});

describe('presence tests on the interpreter fallback', () => {
  it('when a macro sends a condition to the interpreter, then has() answers whether the input supplied the field', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: no-job, condition: '[1.0].exists(x, x > 0.0) && !has(request.session) && !has(signals.job)', action: alert }`,
      ),
    );
    expect(policy.rules[0]?.condition.engine).toBe('interpreted');
    expect(evaluatePolicy(policy, { request: { model: 'm' }, signals: { key: {} } }).intended.verdict).toBe(
      'allow',
    );
    expect(evaluatePolicy(policy, { request: { model: 'm' }, signals: { key: {} } }).rules[0]?.matched).toBe(
      true,
    );
    expect(
      evaluatePolicy(policy, { request: { session: 's' }, signals: { key: {} } }).rules[0]?.matched,
    ).toBe(false);
    expect(evaluatePolicy(policy, { request: {}, signals: { job: {}, key: {} } }).rules[0]?.matched).toBe(
      false,
    );
  });
});

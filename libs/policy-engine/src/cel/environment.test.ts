import { describe, expect, it } from 'vitest';
import { evaluatePolicy } from '../evaluate/evaluate.js';
import type { EvaluationInput } from '../input.js';
import { policyFrom, rulesYaml } from '../test-support.js';
import { compileCondition } from './compile-condition.js';
import { ENVIRONMENT, isPostCallPath } from './environment.js';

function issuesOf(source: string): string[] {
  const result = compileCondition(source);
  return result.ok ? [] : result.issues.map((i) => `${i.offset}: ${i.message}`);
}

// A key looping across jobs: each job is young (no repeats of its own), the key as a whole is not.
const spread: EvaluationInput = {
  request: { model: 'gpt-4o', key: 'key-1', job: 'job-9' },
  signals: {
    repeated_prompts: 0,
    requests_per_minute: 1,
    job: { repeated_prompts: 0, requests_per_minute: 1 },
    key: { repeated_prompts: 8, requests_per_minute: 9 },
  },
};

describe('signals per subject in the environment', () => {
  it('when a condition reads signals.<scope>.<name>, then it type-checks and records the nested path', () => {
    const result = compileCondition(
      'signals.key.repeated_prompts >= 5.0 && signals.repeated_prompts < 5.0 && has(signals.session)',
    );
    expect(result.ok && result.condition.reads).toEqual([
      'signals.key.repeated_prompts',
      'signals.repeated_prompts',
      'signals.session',
    ]);
    expect(result.ok && result.condition.engine).toBe('compiled');
    for (const scope of ['job', 'session', 'key']) {
      expect(ENVIRONMENT.signals.get(`${scope}.error_rate`)?.path).toBe(`signals.${scope}.error_rate`);
    }
  });

  it('when a field of a scope is unknown, a scope is used as a value or a signal is dereferenced, then the error points at it', () => {
    expect(issuesOf('signals.key.repeated_prompt > 1.0')).toEqual([
      '11: unknown signal "repeated_prompt" in signals.key (did you mean "repeated_prompts"?) (known: spend_per_minute, tokens_per_minute, requests_per_minute, repeated_prompts, error_rate, tool_call_depth, job_duration_s, baseline_ratio)',
    ]);
    expect(issuesOf('signals.team.error_rate > 0.5')).toEqual([
      '12: unknown signal "team" (known: spend_per_minute, tokens_per_minute, requests_per_minute, repeated_prompts, error_rate, tool_call_depth, job_duration_s, baseline_ratio; per subject: signals.<job|session|key>.<name>)',
    ]);
    expect(issuesOf('signals.keys.error_rate > 0.5')[0]).toMatch(
      /unknown signal "keys" \(did you mean "key"\?\)/,
    );
    expect(issuesOf('signals.job > 1.0')).toEqual([
      '7: signals.job is not a value on its own; select a signal, e.g. signals.job.repeated_prompts, or test it with has(signals.job)',
    ]);
    expect(issuesOf('signals.error_rate.key > 1.0')[0]).toMatch(
      /signals\.error_rate is a double and has no field "key"; per-subject signals are signals.<job\|session\|key>.<name>, e.g. signals.key.error_rate/,
    );
    expect(issuesOf('signals.key.error_rate == "high"')[0]).toMatch(
      /no matching overload for '_==_' applied to '\(double, string\)'/,
    );
  });

  it('when the request has no such subject, then its signals read as 0 and has() is false', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: session-loop, condition: 'signals.session.repeated_prompts >= 0.0 && !has(signals.session) && has(signals.key)', action: alert }`,
      ),
    );
    const d = evaluatePolicy(policy, spread);
    expect(d.rules[0]?.matched).toBe(true);
    expect(d.inputs).toEqual({
      'signals.session.repeated_prompts': 0,
      'signals.session': false,
      'signals.key': true,
    });
  });

  it('when a rule reads the key scope, then it sees the key across jobs while signals.* stays the job', () => {
    const policy = policyFrom(
      rulesYaml(
        `{ id: key-loop, condition: 'signals.key.repeated_prompts >= 5.0', action: block }`,
        `{ id: job-loop, condition: 'signals.repeated_prompts >= 5.0', action: block }`,
      ),
    );
    const d = evaluatePolicy(policy, spread);
    expect(d.effective.verdict).toBe('block');
    expect(d.effective.decidedBy).toBe('key-loop');
    expect(d.rules.map((r) => [r.id, r.matched])).toEqual([
      ['key-loop', true],
      ['job-loop', false],
    ]);
    expect(d.inputs).toMatchObject({ 'signals.key.repeated_prompts': 8, 'signals.repeated_prompts': 0 });
  });

  it('when a condition on a scope falls back to the interpreter, then it reads the same values', () => {
    const result = compileCondition(
      '[1.0].exists(x, signals.key.repeated_prompts > x) && signals.job.error_rate == 0.0',
    );
    expect(result.ok && result.condition.engine).toBe('interpreted');
    if (!result.ok) return;
    const policy = policyFrom(
      rulesYaml(
        `{ id: i, condition: '[1.0].exists(x, signals.key.repeated_prompts > x) && signals.session.error_rate == 0.0', action: alert }`,
      ),
    );
    expect(evaluatePolicy(policy, spread).rules[0]?.matched).toBe(true);
  });
});

describe('facts known only after the call', () => {
  it('when a condition reads the answer, then it is a post-call condition; otherwise a pre-call one', () => {
    const phaseOf = (source: string) => {
      const result = compileCondition(source);
      return result.ok ? result.condition.phase : result.issues;
    };
    expect(phaseOf('request.actual_tokens > 1000.0')).toBe('post_call');
    expect(phaseOf('request.estimated_tokens > 1000.0 && has(response.cost)')).toBe('post_call');
    expect(phaseOf('[1.0].exists(x, response.output_tokens > x)')).toBe('post_call');
    expect(phaseOf('request.estimated_tokens > 1000.0 || signals.key.error_rate > 0.5')).toBe('pre_call');
    expect(isPostCallPath('response.finish_reason')).toBe(true);
    expect(isPostCallPath('request.cost')).toBe(false);
    expect(isPostCallPath('request.headers["response.cost"]')).toBe(false);
  });

  it('when an answer field is unknown, then the checker lists the known ones', () => {
    expect(issuesOf('response.tokens > 1.0')[0]).toMatch(
      /response has no field "tokens".*known: input_tokens, output_tokens, cached_input_tokens, cost, status, finish_reason, usage_estimated/,
    );
  });
});

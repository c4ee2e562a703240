import { describe, expect, it } from 'vitest';
import { formatDiagnostic, formatDiagnostics } from './diagnostics.js';
import { compilePolicy, loadPolicy } from './load.js';

function errorsOf(source: string, filename = 'policy.yaml'): string[] {
  const result = loadPolicy(source, { filename });
  if (result.ok) throw new Error('expected the policy to be refused');
  return result.errors.map(formatDiagnostic);
}

/** The source text from each diagnostic's line:column on, so a test shows what is pointed at. */
function pointedAt(source: string, filename = 'policy.yaml'): string[] {
  const result = loadPolicy(source, { filename });
  if (result.ok) throw new Error('expected the policy to be refused');
  const lines = source.split('\n');
  return result.errors.map((d) => (lines[(d.line ?? 0) - 1] ?? '').slice((d.column ?? 1) - 1));
}

const base = (rule: string): string => `name: guard
description: keeps agents in check
rules:
  - id: ok
    condition: signals.error_rate > 0.5
    action: alert
${rule}`;

describe('loadPolicy: YAML diagnostics point at the line and column', () => {
  it('when an action is unknown, then the message names it, suggests a fix and lists the actions', () => {
    const source = base(`  - id: loops\n    condition: signals.repeated_prompts > 5\n    action: blok\n`);
    expect(pointedAt(source)).toEqual(['blok']);
    const errors = errorsOf(source);
    expect(errors).toEqual([
      'policy.yaml:9:13: rules[1].action: unknown action "blok" (did you mean "block"?) (expected one of allow, block, throttle, reroute, redact, cap_max_tokens, alert, suspend_key, stop_job)',
    ]);
  });

  it('when a field is unknown, then the key itself is pointed at', () => {
    const source = base(`  - id: loops\n    condition: 'true'\n    action: block\n    priorty: 3\n`);
    expect(pointedAt(source)).toEqual(['priorty: 3']);
    const errors = errorsOf(source);
    expect(errors).toEqual([
      'policy.yaml:10:5: rules[1].priorty: unknown field "priorty" (did you mean "priority"?) (expected one of id, description, priority, condition, action, message, onError)',
    ]);
  });

  it('when a field has the wrong type, then the value is pointed at and both types are named', () => {
    const errors = errorsOf(
      base(`  - id: loops\n    priority: high\n    condition: 'true'\n    action: block\n`),
    );
    expect(errors).toEqual(['policy.yaml:8:15: rules[1].priority: expected a number, got the string "high"']);
  });

  it('when a required field is missing, then the rule that lacks it is pointed at', () => {
    expect(errorsOf(base(`  - id: loops\n    action: block\n`))).toEqual([
      'policy.yaml:7:5: rules[1].condition: missing required field',
    ]);
  });

  it('when action parameters are wrong, then the nested path is named', () => {
    const errors = errorsOf(
      base(`  - id: cap\n    condition: 'true'\n    action:\n      type: cap_max_tokens\n      value: -5\n`),
    );
    expect(errors).toEqual(['policy.yaml:11:14: rules[1].action.value: must be at least 1']);
  });

  it('when a condition has a CEL type error, then the column is that of the offending operator', () => {
    const source = base(`  - id: loops\n    condition: request.model > 5 && true\n    action: block\n`);
    expect(pointedAt(source)).toEqual(['> 5 && true']);
    const errors = errorsOf(source);
    expect(errors).toEqual([
      "policy.yaml:8:30: rules[1].condition: found no matching overload for '_>_' applied to '(string, int)'",
    ]);
  });

  it('when a condition names an unknown field inside a quoted string, then the column accounts for the quote', () => {
    const source = base(`  - id: loops\n    condition: "signals.spend_per_minut > 1"\n    action: block\n`);
    expect(pointedAt(source)).toEqual(['.spend_per_minut > 1"']);
    const errors = errorsOf(source);
    expect(errors).toEqual([
      'policy.yaml:8:24: rules[1].condition: unknown signal "spend_per_minut" (did you mean "spend_per_minute"?) (known: spend_per_minute, tokens_per_minute, requests_per_minute, repeated_prompts, error_rate, tool_call_depth, job_duration_s, baseline_ratio; per subject: signals.<job|session|key>.<name>)',
    ]);
  });

  it('when a condition in a literal block has an error on its second line, then that line is pointed at', () => {
    const source = base(
      `  - id: loops\n    condition: |\n      signals.repeated_prompts > 5 &&\n        request.max_tokens + 1 > 10\n    action: block\n`,
    );
    expect(pointedAt(source)).toEqual(['+ 1 > 10']);
    const errors = errorsOf(source);
    expect(errors).toEqual([
      "policy.yaml:10:28: rules[1].condition: found no matching overload for '_+_' applied to '(double, int)'; input numbers are doubles, so write 2.0 rather than 2",
    ]);
  });

  it('when a condition has a syntax error, then it is reported at the parser position', () => {
    const source = base(`  - id: loops\n    condition: 'request.model == "a" &&'\n    action: block\n`);
    expect(pointedAt(source)[0]).toMatch(/^(&&|== "a" &&)'$/);
    const errors = errorsOf(source);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^policy\.yaml:8:\d+: rules\[1\]\.condition: syntax error: /);
  });

  it('when a condition uses an undeclared variable or function, then the checker refuses it', () => {
    const errors = errorsOf(
      base(
        `  - id: a\n    condition: reqest.model == "x"\n    action: block\n  - id: b\n    condition: lower(caller.team) == "x"\n    action: block\n`,
      ),
    );
    expect(errors).toEqual([
      'policy.yaml:8:16: rules[1].condition: undeclared reference to "reqest" (did you mean "request"?) (variables: request, response, caller, signals, budget, time)',
      'policy.yaml:11:16: rules[2].condition: undeclared function "lower"',
    ]);
  });

  it('when a condition is not boolean, then it is refused', () => {
    expect(errorsOf(base(`  - id: a\n    condition: signals.error_rate * 2.0\n    action: block\n`))).toEqual(
      ['policy.yaml:8:16: rules[1].condition: condition must be a bool expression, got double'],
    );
  });

  it('when rule ids repeat, a regex is invalid or a pattern name is unknown, then each is reported', () => {
    const source = base(
      `  - id: ok\n    condition: 'true'\n    action: { type: redact, patterns: [emial, { regex: "(" }] }\n  - id: r\n    condition: caller.team.matches("[")\n    action: alert\n`,
    );
    expect(pointedAt(source)).toEqual(['ok', 'emial, { regex: "(" }] }', '"(" }] }', '"[")']);
    const errors = errorsOf(source);
    expect(errors[0]).toBe('policy.yaml:7:9: rules[1].id: duplicate rule id "ok" (also rules[0])');
    expect(errors[1]).toMatch(
      /rules\[1\]\.action\.patterns\[0\]: unknown built-in pattern "emial" \(did you mean "email"\?\)/,
    );
    expect(errors[2]).toMatch(/rules\[1\]\.action\.patterns\[1\]\.regex: invalid regular expression/);
    expect(errors[3]).toMatch(/rules\[2\]\.condition: invalid regular expression/);
  });

  it('when structural and CEL errors coexist, then both are reported in one pass, in the order of the lines', () => {
    const errors = errorsOf(base(`  - id: x\n    condition: request.modle == "a"\n    action: blok\n`));
    expect(errors.map((e) => e.split(': ')[1])).toEqual(['rules[1].condition', 'rules[1].action']);
  });

  it('when the YAML itself is malformed, then the parser error carries its position', () => {
    const errors = errorsOf('name: x\nrules:\n  - id: a\n   bad: [\n');
    expect(errors[0]).toMatch(/^policy\.yaml:4:\d+: invalid YAML: /);
  });

  it('when the document is not a mapping or a flag has a bad value, then that is said plainly', () => {
    expect(errorsOf('- just\n- a list\n')).toEqual([
      'policy.yaml:1:1: a policy must be a mapping with "name" and "rules"',
    ]);
    expect(
      errorsOf(base(`  - id: t\n    condition: 'true'\n    action: block\n    onError: maybe\n`)),
    ).toEqual(['policy.yaml:10:14: rules[1].onError: expected "open" or "closed", got the string "maybe"']);
  });

  it('when aliases would expand without bound, then the document is refused rather than expanded', () => {
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
name: x
rules: []
`;
    expect(errorsOf(bomb)[0]).toMatch(/^policy\.yaml: invalid YAML: /);
  });

  it('when the source is larger than the limit, then it is refused before parsing', () => {
    expect(errorsOf(`name: x\nrules: []\n# ${'x'.repeat(1024 * 1024)}`)).toEqual([
      'policy.yaml: policy source is larger than 1048576 bytes',
    ]);
  });
});

describe('loadPolicy: JSON diagnostics name the path', () => {
  it('when a JSON policy has an unknown action, then the path and position are given', () => {
    const source =
      '{\n  "name": "x",\n  "rules": [\n    { "id": "a", "condition": "true", "action": "blok" }\n  ]\n}\n';
    expect(pointedAt(source, 'policy.json')).toEqual(['"blok" }']);
    const errors = errorsOf(source, 'policy.json');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^policy\.json:4:49: rules\[0\]\.action: unknown action "blok"/);
  });

  it('when the JSON is malformed, then the JSON parser message is given with a position', () => {
    const errors = errorsOf('{"name": "x", "rules": [,]}', 'policy.json');
    expect(errors[0]).toMatch(/^policy\.json:1:\d+: invalid JSON: /);
  });

  it('when a value (not text) is compiled, then diagnostics name the path without a position', () => {
    const result = compilePolicy({
      name: 'x',
      rules: [{ id: 'a', condition: 'true', action: { type: 'throttle' } }],
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(formatDiagnostics(result.errors)).toBe(
      '<policy>: rules[0].action: throttle needs exactly one of "delayMs" or "queue: true"',
    );
  });

  it('when a throttle sets concurrency, then it needs queue: true and a whole number from 1', () => {
    const compile = (action: Record<string, unknown>) =>
      compilePolicy({
        name: 'x',
        rules: [{ id: 'a', condition: 'true', action: { type: 'throttle', ...action } }],
      });
    expect(compile({ queue: true, concurrency: 3 }).ok).toBe(true);
    const delayed = compile({ delayMs: 10, concurrency: 3 });
    expect(delayed.ok).toBe(false);
    if (!delayed.ok)
      expect(formatDiagnostics(delayed.errors)).toBe(
        '<policy>: rules[0].action.concurrency: "concurrency" applies only with "queue: true"',
      );
    expect(compile({ queue: true, concurrency: 0 }).ok).toBe(false);
  });
});

describe('loadPolicy: normalization', () => {
  it('when actions are bare names and fields are omitted, then defaults are filled in', () => {
    const result = loadPolicy(base(`  - id: stop\n    condition: 'true'\n    action: stop_job\n`));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.document.rules).toEqual([
      {
        id: 'ok',
        priority: 0,
        condition: 'signals.error_rate > 0.5',
        action: { type: 'alert' },
        onError: 'open',
      },
      { id: 'stop', priority: 0, condition: 'true', action: { type: 'stop_job' }, onError: 'closed' },
    ]);
  });

  it('when a parameterised action is written bare, then the fix is suggested', () => {
    expect(errorsOf(base(`  - id: t\n    condition: 'true'\n    action: throttle\n`))).toEqual([
      'policy.yaml:9:13: rules[1].action: action "throttle" needs parameters; write it as { type: throttle, … }',
    ]);
  });

  it('when a redact action omits the replacement, then "[REDACTED]" is used', () => {
    const result = compilePolicy({
      name: 'x',
      rules: [
        {
          id: 'r',
          condition: 'true',
          action: { type: 'redact', patterns: ['email', { regex: 'a+', flags: 'i' }] },
        },
      ],
    });
    expect(result.ok && result.document.rules[0]?.action).toEqual({
      type: 'redact',
      patterns: ['email', { regex: 'a+', flags: 'i' }],
      replacement: '[REDACTED]',
    });
  });
});

import { describe, expect, it } from 'vitest';
import { compileCondition } from './compile-condition.js';

function issuesOf(source: string): string[] {
  const result = compileCondition(source);
  return result.ok ? [] : result.issues.map((i) => `${i.offset}: ${i.message}`);
}

describe('checking conditions against the declared environment', () => {
  it('when a condition is well typed, then it compiles and lists the paths it reads once each, in order', () => {
    const result = compileCondition(
      'signals.error_rate > 0.5 && request.headers["x-job"] == caller.team && signals.error_rate < 0.9',
    );
    expect(result.ok && result.condition.reads).toEqual([
      'signals.error_rate',
      'request.headers["x-job"]',
      'caller.team',
    ]);
    expect(result.ok && result.condition.engine).toBe('compiled');
  });

  it('when a comprehension variable shadows a root name, then it is not mistaken for the root', () => {
    const result = compileCondition('["a", "b"].exists(request, request == caller.team)');
    expect(result.ok && result.condition.reads).toEqual(['caller.team']);
    expect(result.ok && result.condition.engine).toBe('interpreted');
  });

  it('when a root is used as a value, a field is unknown or a method is called as a function, then each is refused', () => {
    expect(issuesOf('size(caller) > 0')).toEqual([
      '5: "caller" is not a value on its own; select a field, e.g. caller.key_id',
    ]);
    expect(issuesOf('budget.spent > 1.0')).toEqual([
      '6: budget has no field "spent" (known: remaining, limit)',
    ]);
    expect(issuesOf('startsWith(request.model, "gpt")')).toEqual([
      '0: write startsWith as a method: text.startsWith(other)',
    ]);
  });

  it('when operand types cannot meet, then the overload error names them', () => {
    expect(issuesOf('request.stream == "yes"')).toEqual([
      "15: found no matching overload for '_==_' applied to '(bool, string)'",
    ]);
    expect(issuesOf('request.model in [1, 2]')).toEqual([
      "14: found no matching overload for '@in' applied to '(string, list(int))'",
    ]);
    expect(issuesOf('signals.error_rate % 2.0 == 0.0')).toEqual([
      "19: found no matching overload for '_%_' applied to '(double, double)'",
    ]);
  });

  it('when a message is constructed or the condition is empty or too long, then it is refused', () => {
    expect(issuesOf('google.protobuf.Duration{seconds: 1} == 1')[0]).toMatch(/message construction/);
    expect(issuesOf('   ')).toEqual(['0: condition is empty']);
    expect(issuesOf(`${'true && '.repeat(600)}true`)).toEqual([
      '0: condition is longer than 4096 characters',
    ]);
  });

  it('when a condition nests very deeply, then it is a diagnostic rather than a crash', () => {
    const deep = `${'('.repeat(1500)}true${')'.repeat(1500)}`;
    expect(compileCondition(deep)).toEqual({
      ok: false,
      issues: [{ offset: 0, message: 'syntax error: expression is too deeply nested' }],
    });
  });
});

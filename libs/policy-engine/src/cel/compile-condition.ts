import { parse } from '@bufbuild/cel';
import type { EvaluationInput } from '../input.js';
import { type CheckIssue, checkCondition } from './check.js';
import { compileFast, Unsupported } from './compile-fast.js';
import type { ParsedCel } from './expr.js';
import { type EvalScratch, planInterpreted } from './interpreted.js';
import type { InputRead } from './reads.js';
import { CelEvalError } from './runtime.js';
import { typeName } from './types.js';

export const MAX_CONDITION_LENGTH = 4096;

export interface CompiledCondition {
  readonly source: string;
  /** Input paths the expression references, in first-reference order. */
  readonly reads: readonly InputRead[];
  /** `compiled`: closures; `interpreted`: @bufbuild/cel (for constructs the closure compiler leaves out). */
  readonly engine: 'compiled' | 'interpreted';
  /** Throws CelEvalError when evaluation fails; the caller applies the rule's onError. */
  readonly evaluate: (input: EvaluationInput, scratch: EvalScratch) => boolean;
}

export type ConditionResult =
  | { readonly ok: true; readonly condition: CompiledCondition }
  | { readonly ok: false; readonly issues: readonly CheckIssue[] };

export function compileCondition(source: string): ConditionResult {
  if (source.length > MAX_CONDITION_LENGTH) {
    return fail(0, `condition is longer than ${MAX_CONDITION_LENGTH} characters`);
  }
  if (source.trim() === '') return fail(0, 'condition is empty');
  let parsed: ParsedCel;
  try {
    parsed = parse(source);
  } catch (err) {
    return { ok: false, issues: [syntaxIssue(source, err)] };
  }
  try {
    return checkAndCompile(source, parsed);
  } catch (err) {
    // The checker and compiler recurse over the AST; pathological nesting must be a diagnostic, not a crash.
    if (err instanceof RangeError) return fail(0, 'expression is too deeply nested');
    throw err;
  }
}

function checkAndCompile(source: string, parsed: ParsedCel): ConditionResult {
  const checked = checkCondition(parsed);
  if (checked.issues.length > 0) return { ok: false, issues: checked.issues };
  if (checked.type.kind !== 'bool' && checked.type.kind !== 'dyn') {
    return fail(0, `condition must be a bool expression, got ${typeName(checked.type)}`);
  }
  const condition = compileFastOrInterpreted(source, parsed, checked);
  return { ok: true, condition };
}

function compileFastOrInterpreted(
  source: string,
  parsed: ParsedCel,
  checked: ReturnType<typeof checkCondition>,
): CompiledCondition {
  try {
    const fn = compileFast(parsed.expr, checked.types);
    return {
      source,
      reads: checked.reads,
      engine: 'compiled',
      evaluate: (input) => asBool(fn(input)),
    };
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
  }
  const run = planInterpreted(parsed);
  return {
    source,
    reads: checked.reads,
    engine: 'interpreted',
    evaluate: (input, scratch) => asBool(run(input, scratch)),
  };
}

function asBool(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  throw new CelEvalError(`condition evaluated to ${typeof v}, not a bool`);
}

function fail(offset: number, message: string): ConditionResult {
  return { ok: false, issues: [{ offset, message }] };
}

/** The parser reports `<input>:LINE:COL: message`; turn that into an offset into the source. */
function syntaxIssue(source: string, err: unknown): CheckIssue {
  const raw = err instanceof Error ? err.message : String(err);
  const match = /^<input>:(\d+):(\d+): (.*)$/s.exec(raw);
  if (match === null) {
    return {
      offset: 0,
      message: `syntax error: ${err instanceof RangeError ? 'expression is too deeply nested' : raw}`,
    };
  }
  const lines = source.split('\n');
  const line = Number(match[1]);
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += (lines[i]?.length ?? 0) + 1;
  offset += Math.max(0, Number(match[2]) - 1);
  return { offset: Math.min(offset, source.length), message: `syntax error: ${match[3]}` };
}

import { parse } from '@bufbuild/cel';
import type { EvaluationInput, Phase } from '../input.js';
import { type CheckIssue, type CheckResult, checkCondition } from './check.js';
import { compileFast, type Slots, Unsupported } from './compile-fast.js';
import type { ParsedCel } from './expr.js';
import { type EvalScratch, planInterpreted } from './interpreted.js';
import { CelEvalError } from './runtime.js';
import { SlotTable } from './slots.js';
import { typeName } from './types.js';

export const MAX_CONDITION_LENGTH = 4096;

/** `interpreted` forces @bufbuild/cel for every condition: the reference semantics, for verification. */
export type ConditionEngine = 'auto' | 'interpreted';

export interface CompiledCondition {
  readonly source: string;
  /** Input paths the expression references (each has a slot in the table it was compiled against). */
  readonly reads: readonly string[];
  /** Before the call, or after the answer when the condition reads `response.*` or `request.actual_tokens`. */
  readonly phase: Phase;
  /** `compiled`: closures; `interpreted`: @bufbuild/cel (for constructs the closure compiler leaves out). */
  readonly engine: 'compiled' | 'interpreted';
  /** Throws CelEvalError when evaluation fails; the caller applies the rule's onError. */
  readonly evaluate: (slots: Slots, input: EvaluationInput, scratch: EvalScratch) => boolean;
}

export interface ConditionOptions {
  readonly engine?: ConditionEngine;
  /**
   * Shared by all conditions of a policy (one table per phase, chosen once the condition's phase is
   * known); a fresh one when compiling a lone condition.
   */
  readonly slots?: SlotTable | ((phase: Phase) => SlotTable);
}

export type ConditionResult =
  | { readonly ok: true; readonly condition: CompiledCondition }
  | { readonly ok: false; readonly issues: readonly CheckIssue[] };

export function compileCondition(source: string, options: ConditionOptions = {}): ConditionResult {
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
    return checkAndCompile(source, parsed, options.engine ?? 'auto', options.slots ?? new SlotTable());
  } catch (err) {
    // The checker and compiler recurse over the AST; pathological nesting must be a diagnostic, not a crash.
    if (err instanceof RangeError) return fail(0, 'expression is too deeply nested');
    throw err;
  }
}

function checkAndCompile(
  source: string,
  parsed: ParsedCel,
  engine: ConditionEngine,
  slotsFor: SlotTable | ((phase: Phase) => SlotTable),
): ConditionResult {
  const checked = checkCondition(parsed);
  if (checked.issues.length > 0) return { ok: false, issues: checked.issues };
  if (checked.type.kind !== 'bool' && checked.type.kind !== 'dyn') {
    return fail(0, `condition must be a bool expression, got ${typeName(checked.type)}`);
  }
  const slots = typeof slotsFor === 'function' ? slotsFor(checked.phase) : slotsFor;
  // Every referenced path gets a slot, whichever engine runs, so explanations report it.
  for (const read of checked.reads) slots.indexOf(read);
  const reads = checked.reads.map((r) => r.path);
  return { ok: true, condition: build(source, parsed, checked, engine, slots, reads) };
}

function build(
  source: string,
  parsed: ParsedCel,
  checked: CheckResult,
  engine: ConditionEngine,
  slots: SlotTable,
  reads: readonly string[],
): CompiledCondition {
  const phase = checked.phase;
  if (engine === 'auto') {
    try {
      const fn = compileFast(parsed.expr, checked.types, slots);
      // A condition typed bool yields booleans from the closures; only dyn needs the runtime check.
      const evaluate =
        checked.type.kind === 'bool'
          ? (fn as CompiledCondition['evaluate'])
          : (s: Slots, input: EvaluationInput) => asBool(fn(s, input));
      return { source, reads, phase, engine: 'compiled', evaluate };
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
    }
  }
  const run = planInterpreted(parsed);
  return {
    source,
    reads,
    phase,
    engine: 'interpreted',
    evaluate: (_s, input, scratch) => asBool(run(input, scratch)),
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

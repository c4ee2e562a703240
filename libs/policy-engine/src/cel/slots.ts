import type { EvaluationInput } from '../input.js';
import type { FieldSpec } from './environment.js';
import { CelEvalError, describeValue, type HeaderMap, type RuntimeValue } from './runtime.js';

/**
 * Every input path a policy references gets a slot: read once per evaluation into a reused array,
 * shared by all rules that reference it and by the decision's explanation. Reading 100 rules'
 * inputs straight from the request would repeat the same polymorphic property loads many times.
 */

/** A value the explanation records for a path (credentials redacted, absent keys as null). */
export type InputValue = string | number | boolean | null | readonly string[];

/** A header the request did not carry. */
export const MISSING: unique symbol = Symbol('missing');

/** A field whose input value had the wrong type: reading it is an evaluation error. */
export class SlotFailure {
  constructor(readonly message: string) {}
  toError(): CelEvalError {
    return new CelEvalError(this.message);
  }
}

export type SlotValue = RuntimeValue | typeof MISSING | SlotFailure;

export interface SlotSource {
  /** The path shown in explanations, e.g. `signals.error_rate` or `request.headers["x-flowloom-job"]`. */
  readonly path: string;
  readonly read: (input: EvaluationInput) => SlotValue;
  readonly report: (value: SlotValue) => InputValue;
}

function guarded(read: (input: EvaluationInput) => SlotValue): (input: EvaluationInput) => SlotValue {
  return (input) => {
    try {
      return read(input);
    } catch (err) {
      return new SlotFailure(err instanceof Error ? err.message : String(err));
    }
  };
}

const plain = (v: SlotValue): InputValue =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : null;

export function fieldSource(spec: FieldSpec): SlotSource {
  if (spec.path === 'request.headers') {
    return {
      path: spec.path,
      read: guarded(spec.read),
      // The whole map is reported by header names only: values may be credentials.
      report: (v) => (isHeaderMap(v) ? Object.keys(v).sort() : null),
    };
  }
  return { path: spec.path, read: guarded(spec.read), report: plain };
}

// Header values that carry credentials never enter a decision record (it ends up in the audit trail).
const SENSITIVE_HEADER = /authorization|cookie|api[-_]?key|token|secret|password|signature/i;
export const REDACTED_VALUE = '[redacted]';

export function headerKeySource(headers: FieldSpec, name: string): SlotSource {
  const sensitive = SENSITIVE_HEADER.test(name);
  return {
    path: `request.headers[${JSON.stringify(name)}]`,
    read: guarded((input) => {
      const map = headers.read(input) as HeaderMap;
      // Own keys only: a header name is caller-controlled and must not reach Object.prototype.
      if (!Object.hasOwn(map, name)) return MISSING;
      const value = map[name];
      if (typeof value !== 'string') {
        return new SlotFailure(`header ${name}: expected a string, got ${describeValue(value)}`);
      }
      return value;
    }),
    report: (v) => (typeof v !== 'string' ? null : sensitive ? REDACTED_VALUE : v),
  };
}

export function isHeaderMap(v: SlotValue): v is HeaderMap {
  return typeof v === 'object' && v !== null && !(v instanceof SlotFailure) && !Array.isArray(v);
}

/** Assigns slot indexes by path; one table per compiled policy. */
export class SlotTable {
  private readonly byPath = new Map<string, number>();
  readonly sources: SlotSource[] = [];

  indexOf(source: SlotSource): number {
    let index = this.byPath.get(source.path);
    if (index === undefined) {
      index = this.sources.length;
      this.byPath.set(source.path, index);
      this.sources.push(source);
    }
    return index;
  }

  /** Reads every slot into `into`, which is reused across evaluations. */
  fill(input: EvaluationInput, into: SlotValue[]): void {
    const sources = this.sources;
    for (let i = 0; i < sources.length; i++) into[i] = sources[i]!.read(input);
  }
}

type Reporter = (value: SlotValue) => InputValue;
type InputsBuilder = (
  reporters: readonly Reporter[],
  values: readonly SlotValue[],
) => Record<string, InputValue>;

/**
 * Builds a decision's `inputs` record. Assigning ~25 dotted keys one at a time costs ~3 µs (each
 * store is megamorphic), more than evaluating 100 conditions; one object literal per policy costs
 * ~0.15 µs. The literal's keys are emitted as JSON string literals and values are read by index, so
 * no policy text is ever evaluated as code. Where code generation is disabled
 * (--disallow-code-generation-from-strings), plain assignment is used instead.
 */
export function inputsRecordBuilder(
  sources: readonly SlotSource[],
  generateCode = true,
): (values: readonly SlotValue[]) => Record<string, InputValue> {
  const reporters = sources.map((s) => s.report);
  try {
    if (!generateCode) throw new EvalError('code generation not wanted');
    const members = sources.map((s, k) => `${JSON.stringify(s.path)}: r[${k}](v[${k}])`);
    const build = new Function('r', 'v', `return { ${members.join(', ')} };`) as InputsBuilder;
    return (values) => build(reporters, values);
  } catch (err) {
    // Only "code generation disallowed" falls back; a SyntaxError would be our bug and must surface.
    if (!(err instanceof EvalError)) throw err;
    return (values) => {
      const out: Record<string, InputValue> = {};
      for (let k = 0; k < sources.length; k++) out[sources[k]!.path] = reporters[k]!(values[k]!);
      return out;
    };
  }
}

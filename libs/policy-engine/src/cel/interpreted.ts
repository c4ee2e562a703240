import { type CelInput, celEnv, isCelError, plan } from '@bufbuild/cel';
import type { EvaluationInput } from '../input.js';
import { ENVIRONMENT, type FieldSpec, isRootName, ROOT_NAMES } from './environment.js';
import { type Expr, type ParsedCel, rootSelect } from './expr.js';
import { CelEvalError, type HeaderMap } from './runtime.js';

/** Conditions the closure compiler does not handle run on @bufbuild/cel's interpreter. */

const env = celEnv();

export type CelBindings = Record<string, CelInput>;

/** Per-evaluation memo so several interpreted rules share one bindings object. */
export interface EvalScratch {
  bindings: CelBindings | undefined;
}

export function newScratch(): EvalScratch {
  return { bindings: undefined };
}

export function planInterpreted(
  parsed: ParsedCel,
): (input: EvaluationInput, scratch: EvalScratch) => unknown {
  const rewritten = structuredClone(parsed);
  const presence = rewritePresenceTests(rewritten.expr);
  const run = plan(env, rewritten);
  return (input, scratch) => {
    scratch.bindings ??= toBindings(input);
    const bindings = scratch.bindings;
    for (const [name, spec] of presence) bindings[name] ??= spec.has(input);
    const result = run(bindings);
    if (isCelError(result)) throw new CelEvalError(result.message);
    return result;
  };
}

/**
 * `has(request.job)`, `has(signals.job)`: the bindings hold every declared field (absent ones as
 * their zero value, so reading them matches the compiled closures), which would make CEL's presence
 * test always true. Each such test on a declared field is replaced by a variable bound to whether the
 * input supplied it (FieldSpec.has), as the compiled path answers. Presence tests on maps (headers)
 * and on comprehension variables keep CEL's own meaning.
 */
function rewritePresenceTests(root: Expr | undefined): Map<string, FieldSpec> {
  const found = new Map<string, FieldSpec>();
  const visit = (e: Expr | undefined, shadowed: ReadonlySet<string>): void => {
    if (e === undefined) return;
    const kind = e.exprKind;
    switch (kind.case) {
      case 'selectExpr': {
        const sel = rootSelect(e);
        const spec =
          sel?.testOnly && isRootName(sel.root) && !shadowed.has(sel.root)
            ? ENVIRONMENT[sel.root].get(sel.field)
            : undefined;
        if (spec !== undefined) {
          const name = presenceBinding(spec.path);
          found.set(name, spec);
          e.exprKind = { case: 'identExpr', value: { $typeName: 'cel.expr.Expr.Ident', name } };
          return;
        }
        visit(kind.value.operand, shadowed);
        return;
      }
      case 'callExpr':
        visit(kind.value.target, shadowed);
        for (const arg of kind.value.args) visit(arg, shadowed);
        return;
      case 'listExpr':
        for (const element of kind.value.elements) visit(element, shadowed);
        return;
      case 'structExpr':
        for (const entry of kind.value.entries) {
          if (entry.keyKind.case === 'mapKey') visit(entry.keyKind.value, shadowed);
          visit(entry.value, shadowed);
        }
        return;
      case 'comprehensionExpr': {
        const c = kind.value;
        visit(c.iterRange, shadowed);
        visit(c.accuInit, shadowed);
        const inner = new Set([...shadowed, c.iterVar, c.iterVar2, c.accuVar]);
        visit(c.loopCondition, inner);
        visit(c.loopStep, inner);
        visit(c.result, inner);
        return;
      }
      default:
        return;
    }
  };
  visit(root, new Set());
  return found;
}

/** A variable name no condition can write (conditions may only name the declared roots). */
const presenceBinding = (path: string): string => `flowloom_has__${path.replaceAll('.', '__')}`;

/**
 * The same view of the input the compiled closures read (defaults applied). A field whose input
 * value has the wrong type is left out, so reading it is an error here as well.
 */
export function toBindings(input: EvaluationInput): CelBindings {
  const bindings: CelBindings = {};
  for (const root of ROOT_NAMES) {
    const fields: Record<string, CelInput> = {};
    for (const [name, spec] of ENVIRONMENT[root]) {
      // `signals.<scope>` is bound as the map of its signals (zeros when absent, as compiled reads give).
      if (spec.scope !== undefined) continue;
      const dot = name.indexOf('.');
      if (dot >= 0) {
        const scope = name.slice(0, dot);
        const nested = (fields[scope] ?? {}) as Record<string, CelInput>;
        fields[scope] = nested;
        try {
          nested[name.slice(dot + 1)] = spec.read(input) as CelInput;
        } catch {
          // unbound, as below
        }
        continue;
      }
      try {
        const value = spec.read(input);
        fields[name] =
          name === 'headers' && root === 'request' ? headerMap(value as HeaderMap) : (value as CelInput);
      } catch {
        // left unbound on purpose: see above
      }
    }
    bindings[root] = fields;
  }
  return bindings;
}

function headerMap(headers: HeaderMap): Map<string, string> {
  const map = new Map<string, string>();
  for (const key of Object.keys(headers)) {
    const value = headers[key];
    if (typeof value === 'string') map.set(key, value);
  }
  return map;
}

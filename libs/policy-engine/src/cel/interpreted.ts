import { type CelInput, celEnv, isCelError, plan } from '@bufbuild/cel';
import type { EvaluationInput } from '../input.js';
import { ENVIRONMENT, ROOT_NAMES } from './environment.js';
import type { ParsedCel } from './expr.js';
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
  const run = plan(env, parsed);
  return (input, scratch) => {
    scratch.bindings ??= toBindings(input);
    const result = run(scratch.bindings);
    if (isCelError(result)) throw new CelEvalError(result.message);
    return result;
  };
}

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

import type { EvaluationInput } from '../input.js';
import type { FieldSpec } from './environment.js';
import type { HeaderMap } from './runtime.js';

/** A value a rule read, as recorded in its explanation. */
export type InputValue = string | number | boolean | null | readonly string[];

/** One input path a condition references, and how to report its value without failing. */
export interface InputRead {
  readonly path: string;
  readonly report: (input: EvaluationInput) => InputValue;
}

// Header values that carry credentials never enter a decision record (it ends up in the audit trail).
const SENSITIVE_HEADER = /authorization|cookie|api[-_]?key|token|secret|password|signature/i;
export const REDACTED_VALUE = '[redacted]';

export function fieldRead(spec: FieldSpec): InputRead {
  if (spec.path === 'request.headers') return headerNamesRead(spec);
  return {
    path: spec.path,
    report: (input) => {
      try {
        return spec.read(input) as InputValue;
      } catch {
        return null;
      }
    },
  };
}

/** A whole-map read reports the header names only: values may be secrets. */
function headerNamesRead(spec: FieldSpec): InputRead {
  return {
    path: spec.path,
    report: (input) => {
      try {
        return Object.keys(spec.read(input) as HeaderMap).sort();
      } catch {
        return null;
      }
    },
  };
}

/** `request.headers["name"]`: the value, null when absent, redacted when it may be a credential. */
export function headerKeyRead(headers: FieldSpec, name: string): InputRead {
  const sensitive = SENSITIVE_HEADER.test(name);
  return {
    path: `request.headers[${JSON.stringify(name)}]`,
    report: (input) => {
      try {
        const map = headers.read(input) as HeaderMap;
        if (!Object.hasOwn(map, name)) return null;
        const value = map[name];
        if (typeof value !== 'string') return null;
        return sensitive ? REDACTED_VALUE : value;
      } catch {
        return null;
      }
    },
  };
}

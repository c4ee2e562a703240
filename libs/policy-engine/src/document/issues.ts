import type { z } from 'zod';
import { didYouMean } from '../suggest.js';

export type PathSegment = string | number;

/** A validation problem before it is given a file position. */
export interface DocumentIssue {
  readonly path: readonly PathSegment[];
  readonly message: string;
  /** `key` points at a mapping key (unknown fields), `value` at the value itself. */
  readonly target: 'key' | 'value';
  /** For condition errors: the offset inside the CEL expression. */
  readonly exprOffset?: number;
}

export function issue(
  path: readonly PathSegment[],
  message: string,
  target: 'key' | 'value' = 'value',
): DocumentIssue {
  return { path, message, target };
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' && !Number.isInteger(v)) return `the number ${v}`;
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  int: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

/** zod issues as sentences a policy author can act on, with paths prefixed by where the value sits. */
export function fromZod(
  prefix: readonly PathSegment[],
  error: z.ZodError,
  knownKeys: readonly string[],
): DocumentIssue[] {
  const out: DocumentIssue[] = [];
  for (const raw of error.issues) {
    const path = [...prefix, ...raw.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    const input: unknown = 'input' in raw ? raw.input : undefined;
    switch (raw.code) {
      case 'unrecognized_keys':
        for (const key of raw.keys) {
          out.push(
            issue(
              [...path, key],
              `unknown field "${key}"${didYouMean(key, knownKeys)} (expected one of ${knownKeys.join(', ')})`,
              'key',
            ),
          );
        }
        break;
      case 'invalid_type':
        out.push(
          issue(
            path,
            input === undefined
              ? 'missing required field'
              : `expected ${EXPECTED[raw.expected] ?? raw.expected}, got ${describe(input)}`,
          ),
        );
        break;
      case 'invalid_value':
        out.push(
          issue(
            path,
            `expected ${raw.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${describe(input)}`,
          ),
        );
        break;
      case 'too_small':
        out.push(issue(path, tooSmall(raw.origin, raw.minimum)));
        break;
      case 'too_big':
        out.push(issue(path, tooBig(raw.origin, raw.maximum)));
        break;
      default:
        out.push(issue(path, raw.message));
    }
  }
  return out;
}

function tooSmall(origin: string, minimum: number | bigint): string {
  if (origin === 'string')
    return Number(minimum) <= 1 ? 'must not be empty' : `must be at least ${minimum} characters`;
  if (origin === 'array') return `must have at least ${minimum} item${Number(minimum) === 1 ? '' : 's'}`;
  return `must be at least ${minimum}`;
}

function tooBig(origin: string, maximum: number | bigint): string {
  if (origin === 'string') return `must be at most ${maximum} characters`;
  if (origin === 'array') return `must have at most ${maximum} items`;
  return `must be at most ${maximum}`;
}

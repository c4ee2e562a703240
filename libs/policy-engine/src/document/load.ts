import { LineCounter, parseDocument } from 'yaml';
import { compileCondition } from '../cel/compile-condition.js';
import {
  type CompiledPolicy,
  type CompileOptions,
  compileDocument,
  conditionIssue,
} from '../evaluate/compile-policy.js';
import { formatPath, type PolicyDiagnostic } from './diagnostics.js';
import type { DocumentIssue } from './issues.js';
import { locateIssue, type Position } from './locate.js';
import type { PolicyDocument } from './schema.js';
import { validateDocument } from './validate.js';

export const MAX_POLICY_SOURCE_BYTES = 1024 * 1024;

export interface LoadOptions extends CompileOptions {
  /** Used in diagnostics (`policy.yaml:12:7: …`) and to tell JSON from YAML by extension. */
  readonly filename?: string;
  readonly format?: 'yaml' | 'json';
}

export type LoadResult =
  | { readonly ok: true; readonly policy: CompiledPolicy; readonly document: PolicyDocument }
  | { readonly ok: false; readonly errors: readonly PolicyDiagnostic[] };

type Locator = (found: DocumentIssue) => Position | undefined;

/** Parses, validates and compiles a policy source; nothing invalid ever yields a policy. */
export function loadPolicy(source: string, options: LoadOptions = {}): LoadResult {
  const file = options.filename;
  if (Buffer.byteLength(source, 'utf8') > MAX_POLICY_SOURCE_BYTES) {
    return failure(file, [], `policy source is larger than ${MAX_POLICY_SOURCE_BYTES} bytes`);
  }
  const format = options.format ?? (file?.toLowerCase().endsWith('.json') ? 'json' : 'yaml');
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const locate: Locator = (found) => locateIssue(doc, lines, source, found);

  let value: unknown;
  if (format === 'json') {
    try {
      value = JSON.parse(source);
    } catch (err) {
      const message = (err as Error).message;
      const at = /at position (\d+)/.exec(message);
      const yamlError = doc.errors[0]?.pos[0];
      const offset = at?.[1] === undefined ? yamlError : Number(at[1]);
      const pos = offset === undefined ? undefined : lines.linePos(offset);
      return { ok: false, errors: [{ ...where(file, pos), path: '', message: `invalid JSON: ${message}` }] };
    }
  } else {
    if (doc.errors.length > 0) {
      return {
        ok: false,
        errors: doc.errors.map((e) => ({
          ...where(file, lines.linePos(e.pos[0])),
          path: '',
          message: `invalid YAML: ${e.message}`,
        })),
      };
    }
    try {
      // Bounded alias expansion: a "billion laughs" document is refused, not expanded.
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      return failure(file, [], `invalid YAML: ${(err as Error).message}`);
    }
  }
  return compileValue(value, file, locate, options);
}

/** For a document that is already a value (an API body): diagnostics name paths, not lines. */
export function compilePolicy(value: unknown, options: CompileOptions = {}): LoadResult {
  return compileValue(value, undefined, () => undefined, options);
}

function compileValue(
  value: unknown,
  file: string | undefined,
  locate: Locator,
  options: CompileOptions,
): LoadResult {
  const validated = validateDocument(value);
  if (!validated.ok) {
    const all = [...validated.issues, ...conditionIssues(value)];
    return { ok: false, errors: toDiagnostics(sortByPath(all), file, locate) };
  }
  const compiled = compileDocument(validated.document, options);
  if (!compiled.ok) return { ok: false, errors: toDiagnostics(compiled.issues, file, locate) };
  return { ok: true, policy: compiled.policy, document: validated.document };
}

/** CEL problems are worth reporting in the same pass as structural ones. */
function conditionIssues(value: unknown): DocumentIssue[] {
  const rules =
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>)['rules'] : undefined;
  if (!Array.isArray(rules)) return [];
  return rules.flatMap((rule: unknown, index) => {
    const condition =
      typeof rule === 'object' && rule !== null ? (rule as Record<string, unknown>)['condition'] : undefined;
    if (typeof condition !== 'string') return [];
    const result = compileCondition(condition);
    return result.ok ? [] : result.issues.map((i) => conditionIssue(index, i));
  });
}

function sortByPath(issues: readonly DocumentIssue[]): DocumentIssue[] {
  const rank = (i: DocumentIssue): number => (typeof i.path[1] === 'number' ? i.path[1] : -1);
  return [...issues].sort((a, b) => rank(a) - rank(b));
}

function toDiagnostics(
  issues: readonly DocumentIssue[],
  file: string | undefined,
  locate: Locator,
): PolicyDiagnostic[] {
  const located = issues.map((found) => ({
    ...where(file, locate(found)),
    path: formatPath(found.path),
    message: found.message,
  }));
  // In the order of the text (a rule's CEL error above its action's); unlocated ones keep theirs.
  return located.sort((a, b) =>
    a.line === undefined || b.line === undefined ? 0 : a.line - b.line || (a.column ?? 0) - (b.column ?? 0),
  );
}

function where(
  file: string | undefined,
  pos: { line: number; col?: number; column?: number } | undefined,
): Omit<PolicyDiagnostic, 'path' | 'message'> {
  const located = pos === undefined ? {} : { line: pos.line, column: pos.column ?? pos.col ?? 1 };
  return file === undefined ? located : { file, ...located };
}

function failure(file: string | undefined, path: readonly (string | number)[], message: string): LoadResult {
  return { ok: false, errors: [{ ...where(file, undefined), path: formatPath(path), message }] };
}

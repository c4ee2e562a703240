import { BUILTIN_PATTERN_NAMES } from '../redact/builtin-patterns.js';
import { assertPatternCompiles } from '../redact/redact.js';
import { didYouMean } from '../suggest.js';
import {
  ACTION_SCHEMAS,
  ACTION_TYPES,
  type ActionType,
  BARE_ACTIONS,
  CUSTOM_PATTERN_SCHEMA,
  isBuiltinPattern,
  type PolicyAction,
  type RedactionPattern,
} from './actions.js';
import { type DocumentIssue, fromZod, issue, type PathSegment } from './issues.js';

const isActionType = (v: string): v is ActionType => (ACTION_TYPES as readonly string[]).includes(v);

function unknownAction(path: readonly PathSegment[], name: string): DocumentIssue {
  return issue(
    path,
    `unknown action "${name}"${didYouMean(name, ACTION_TYPES)} (expected one of ${ACTION_TYPES.join(', ')})`,
  );
}

export type ActionResult =
  | { action: PolicyAction; issues?: undefined }
  | { action?: undefined; issues: DocumentIssue[] };

/** `action: block` or `action: { type: throttle, delayMs: 500 }`, normalized to the object form. */
export function validateAction(raw: unknown, path: readonly PathSegment[]): ActionResult {
  if (raw === undefined || raw === null) return { issues: [issue(path, 'missing required field')] };
  if (typeof raw === 'string') {
    if (!isActionType(raw)) return { issues: [unknownAction(path, raw)] };
    if (!BARE_ACTIONS.has(raw)) {
      return { issues: [issue(path, `action "${raw}" needs parameters; write it as { type: ${raw}, … }`)] };
    }
    return validateAction({ type: raw }, path);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { issues: [issue(path, 'expected an action name or a mapping with "type"')] };
  }
  const type: unknown = (raw as Record<string, unknown>)['type'];
  if (type === undefined) return { issues: [issue(path, 'missing "type" (the action name)')] };
  if (typeof type !== 'string') return { issues: [issue([...path, 'type'], 'expected an action name')] };
  if (!isActionType(type)) return { issues: [unknownAction([...path, 'type'], type)] };
  const schema = ACTION_SCHEMAS[type];
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) return { issues: fromZod(path, parsed.error, Object.keys(schema.shape)) };
  if (parsed.data.type === 'redact') {
    const patterns = parsed.data.patterns.map((p, i) => validatePattern(p, [...path, 'patterns', i]));
    const issues = patterns.flatMap((p) => (typeof p === 'object' && 'issues' in p ? p.issues : []));
    if (issues.length > 0) return { issues };
    return { action: { ...parsed.data, patterns: patterns as RedactionPattern[] } };
  }
  return { action: parsed.data as PolicyAction };
}

function validatePattern(
  raw: unknown,
  path: readonly PathSegment[],
): RedactionPattern | { issues: DocumentIssue[] } {
  if (typeof raw === 'string') {
    if (isBuiltinPattern(raw)) return raw;
    return {
      issues: [
        issue(
          path,
          `unknown built-in pattern "${raw}"${didYouMean(raw, BUILTIN_PATTERN_NAMES)} (built-ins: ${BUILTIN_PATTERN_NAMES.join(', ')}; write { regex: "…" } for your own)`,
        ),
      ],
    };
  }
  const parsed = CUSTOM_PATTERN_SCHEMA.safeParse(raw, { reportInput: true });
  if (!parsed.success) return { issues: fromZod(path, parsed.error, ['regex', 'flags']) };
  try {
    assertPatternCompiles(parsed.data);
  } catch (err) {
    return { issues: [issue([...path, 'regex'], `invalid regular expression: ${(err as Error).message}`)] };
  }
  return parsed.data;
}

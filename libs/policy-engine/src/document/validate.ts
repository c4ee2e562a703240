import { defaultOnError } from './actions.js';
import { type DocumentIssue, fromZod, issue } from './issues.js';
import { DOCUMENT_SCHEMA, type PolicyDocument, type PolicyRule, RULE_SCHEMA } from './schema.js';
import { validateAction } from './validate-action.js';

export type ValidationResult =
  | { readonly ok: true; readonly document: PolicyDocument }
  | { readonly ok: false; readonly issues: readonly DocumentIssue[] };

const DOCUMENT_KEYS = Object.keys(DOCUMENT_SCHEMA.shape);
const RULE_KEYS = Object.keys(RULE_SCHEMA.shape);

/** Structural validation and normalization; every problem is reported, not just the first. */
export function validateDocument(value: unknown): ValidationResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, issues: [issue([], 'a policy must be a mapping with "name" and "rules"')] };
  }
  const top = DOCUMENT_SCHEMA.safeParse(value, { reportInput: true });
  if (!top.success) return { ok: false, issues: fromZod([], top.error, DOCUMENT_KEYS) };
  const issues: DocumentIssue[] = [];
  const rules: PolicyRule[] = [];
  const firstIndexOfId = new Map<string, number>();
  top.data.rules.forEach((raw, i) => {
    const path = ['rules', i];
    const parsed = RULE_SCHEMA.safeParse(raw, { reportInput: true });
    const action = validateAction(
      typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)['action'] : undefined,
      [...path, 'action'],
    );
    const id = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)['id'] : undefined;
    if (typeof id === 'string') {
      const first = firstIndexOfId.get(id);
      if (first !== undefined)
        issues.push(issue([...path, 'id'], `duplicate rule id "${id}" (also rules[${first}])`));
      else firstIndexOfId.set(id, i);
    }
    if (!parsed.success) {
      // An unknown action is worth reporting alongside the rule's other problems.
      const ruleIssues = fromZod(path, parsed.error, RULE_KEYS);
      issues.push(
        ...ruleIssues,
        ...(ruleIssues.some((x) => x.path[2] === 'action') ? [] : (action.issues ?? [])),
      );
      return;
    }
    if (action.issues !== undefined) {
      issues.push(...action.issues);
      return;
    }
    const { onError, ...rest } = parsed.data;
    rules.push({ ...rest, action: action.action, onError: onError ?? defaultOnError(action.action.type) });
  });
  if (issues.length > 0) return { ok: false, issues };
  const { description, name } = top.data;
  return { ok: true, document: description === undefined ? { name, rules } : { name, description, rules } };
}

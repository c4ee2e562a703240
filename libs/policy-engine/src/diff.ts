import type { PolicyDocument, PolicyRule } from './document/schema.js';
import { canonicalJson, policyVersionId } from './version.js';

/** One field that differs; `from` or `to` is absent when the field was added or removed. */
export interface FieldChange {
  readonly path: string;
  readonly from?: unknown;
  readonly to?: unknown;
}

export interface RuleChange {
  readonly id: string;
  readonly changes: readonly FieldChange[];
}

/** A rule kept but moved relative to the other kept rules (document order breaks priority ties). */
export interface RuleMove {
  readonly id: string;
  readonly from: number;
  readonly to: number;
}

export interface PolicyDiff {
  readonly from: string;
  readonly to: string;
  readonly identical: boolean;
  /** Document-level fields (name, description). */
  readonly policy: readonly FieldChange[];
  readonly added: readonly PolicyRule[];
  readonly removed: readonly PolicyRule[];
  readonly changed: readonly RuleChange[];
  readonly reordered: readonly RuleMove[];
}

/** Structural diff of two normalized documents; rules are matched by id. */
export function diffPolicies(before: PolicyDocument, after: PolicyDocument): PolicyDiff {
  const from = policyVersionId(before);
  const to = policyVersionId(after);
  const policy: FieldChange[] = [];
  compareFields(
    '',
    { name: before.name, description: before.description },
    { name: after.name, description: after.description },
    policy,
  );

  const beforeById = new Map(before.rules.map((r) => [r.id, r]));
  const afterById = new Map(after.rules.map((r) => [r.id, r]));
  const added = after.rules.filter((r) => !beforeById.has(r.id));
  const removed = before.rules.filter((r) => !afterById.has(r.id));
  const changed: RuleChange[] = [];
  for (const rule of after.rules) {
    const old = beforeById.get(rule.id);
    if (old === undefined) continue;
    const changes: FieldChange[] = [];
    compareFields('', old, rule, changes);
    if (changes.length > 0) changed.push({ id: rule.id, changes });
  }
  return {
    from,
    to,
    identical: from === to,
    policy,
    added,
    removed,
    changed,
    reordered: moves(before, after),
  };
}

function moves(before: PolicyDocument, after: PolicyDocument): RuleMove[] {
  const kept = (doc: PolicyDocument, other: PolicyDocument): string[] => {
    const ids = new Set(other.rules.map((r) => r.id));
    return doc.rules.filter((r) => ids.has(r.id)).map((r) => r.id);
  };
  const keptBefore = kept(before, after);
  const keptAfter = kept(after, before);
  const out: RuleMove[] = [];
  keptAfter.forEach((id, i) => {
    if (keptBefore[i] !== id) {
      out.push({
        id,
        from: before.rules.findIndex((r) => r.id === id),
        to: after.rules.findIndex((r) => r.id === id),
      });
    }
  });
  return out;
}

const isRecord = (v: unknown): v is Readonly<Record<string, unknown>> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Recurses into objects; lists and objects whose `type` differs (another action) change as a whole. */
function compareFields(path: string, a: unknown, b: unknown, out: FieldChange[]): void {
  if (isRecord(a) && isRecord(b) && a['type'] === b['type']) {
    const keys = [...Object.keys(a), ...Object.keys(b).filter((k) => !(k in a))];
    for (const key of keys) compareFields(path === '' ? key : `${path}.${key}`, a[key], b[key], out);
    return;
  }
  if (a === undefined && b === undefined) return;
  if (a !== undefined && b !== undefined && canonicalJson(a) === canonicalJson(b)) return;
  out.push({ path, ...(a === undefined ? {} : { from: a }), ...(b === undefined ? {} : { to: b }) });
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : canonicalJson(v));
const short = (version: string): string => version.slice(0, 12);

/** The text `flowloom policy diff` prints. */
export function formatPolicyDiff(diff: PolicyDiff): string {
  const lines = [`policy ${short(diff.from)} -> ${short(diff.to)}${diff.identical ? ' (identical)' : ''}`];
  const change = (c: FieldChange): string =>
    c.from === undefined
      ? `${c.path}: added ${show(c.to)}`
      : c.to === undefined
        ? `${c.path}: removed (was ${show(c.from)})`
        : `${c.path}: ${show(c.from)} -> ${show(c.to)}`;
  for (const c of diff.policy) lines.push(`~ ${change(c)}`);
  for (const r of diff.added)
    lines.push(`+ rule ${r.id} [priority ${r.priority}] ${r.action.type} when ${r.condition}`);
  for (const r of diff.removed)
    lines.push(`- rule ${r.id} [priority ${r.priority}] ${r.action.type} when ${r.condition}`);
  for (const r of diff.changed) {
    lines.push(`~ rule ${r.id}`);
    for (const c of r.changes) lines.push(`    ${change(c)}`);
  }
  for (const m of diff.reordered) lines.push(`^ rule ${m.id} moved: position ${m.from} -> ${m.to}`);
  return lines.join('\n');
}

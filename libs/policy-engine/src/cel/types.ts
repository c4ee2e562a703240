/** Static CEL types as far as our checker needs them. */
export type ScalarKind = 'bool' | 'int' | 'uint' | 'double' | 'string' | 'bytes' | 'null' | 'dyn' | 'type';
export type CelType =
  | { readonly kind: ScalarKind }
  | { readonly kind: 'list'; readonly elem: CelType }
  | { readonly kind: 'map'; readonly key: CelType; readonly value: CelType };

export const T = {
  bool: { kind: 'bool' },
  int: { kind: 'int' },
  uint: { kind: 'uint' },
  double: { kind: 'double' },
  string: { kind: 'string' },
  bytes: { kind: 'bytes' },
  null: { kind: 'null' },
  dyn: { kind: 'dyn' },
  type: { kind: 'type' },
} as const satisfies Record<ScalarKind, CelType>;

export const listOf = (elem: CelType): CelType => ({ kind: 'list', elem });
export const mapOf = (key: CelType, value: CelType): CelType => ({ kind: 'map', key, value });

export function typeName(t: CelType): string {
  if (t.kind === 'list') return `list(${typeName(t.elem)})`;
  if (t.kind === 'map') return `map(${typeName(t.key)}, ${typeName(t.value)})`;
  return t.kind;
}

export const isNumeric = (t: CelType): boolean =>
  t.kind === 'int' || t.kind === 'uint' || t.kind === 'double';

/** CEL allows ==, <, … between any two numeric types; otherwise the types must agree (dyn agrees with all). */
export function comparable(a: CelType, b: CelType): boolean {
  if (a.kind === 'dyn' || b.kind === 'dyn') return true;
  if (isNumeric(a) && isNumeric(b)) return true;
  if (a.kind === 'list' && b.kind === 'list') return comparable(a.elem, b.elem);
  if (a.kind === 'map' && b.kind === 'map') return comparable(a.key, b.key) && comparable(a.value, b.value);
  return a.kind === b.kind;
}

/** The type of a list literal's elements or of a ternary's branches: their common type, else dyn. */
export function join(a: CelType, b: CelType): CelType {
  return typeName(a) === typeName(b) ? a : T.dyn;
}

/** Values the compiled conditions pass around; CEL int is bigint, CEL double is number. */
export type HeaderMap = Readonly<Record<string, string>>;
export type RuntimeValue = boolean | number | bigint | string | HeaderMap | readonly RuntimeValue[];

/** A CEL evaluation error (missing map key, overflow, wrong input type, …); onError decides what it means. */
export class CelEvalError extends Error {
  override readonly name = 'CelEvalError';
}

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v;
}

/** Header lookups must not walk the prototype chain: a header name is caller-controlled. */
export function hasOwnKey(map: HeaderMap, key: string): boolean {
  return Object.hasOwn(map, key);
}

export function lookupHeader(map: HeaderMap, key: string): string {
  if (!Object.hasOwn(map, key)) throw new CelEvalError(`no such key: ${key}`);
  const value = map[key];
  if (typeof value !== 'string')
    throw new CelEvalError(`header ${key}: expected a string, got ${describeValue(value)}`);
  return value;
}

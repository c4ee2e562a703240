import { LedgerError } from './errors.js';

// RFC 8785 JSON Canonicalization Scheme. ECMAScript's own Number::toString and JSON string
// quoting are exactly the serialisations RFC 8785 §3.2.2 prescribes, so they are used as is;
// what this adds is sorted keys, and refusing the values JSON.stringify would silently drop,
// rewrite or emit as something that is not I-JSON.

// ES2024 String.prototype.isWellFormed (native in Node 20, ~10× faster than a /u regex); the
// project's TypeScript lib is ES2023, hence the local type.
type WellFormedCheck = { isWellFormed(): boolean };

/** The RFC 8785 canonical JSON text of `value`. Throws LedgerError('not_canonicalizable'). */
export function canonicalize(value: unknown): string {
  const parts: string[] = [];
  write(value, '$', parts, new Set());
  return parts.join('');
}

/** The UTF-8 bytes of `canonicalize(value)`: what the ledger hashes as an entry. */
export function canonicalBytes(value: unknown): Uint8Array {
  return Buffer.from(canonicalize(value), 'utf8');
}

function notJson(path: string, problem: string): LedgerError {
  return new LedgerError('not_canonicalizable', `canonicalize: ${problem} at ${path}`);
}

function write(value: unknown, path: string, out: string[], ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
      out.push(quote(value, path));
      return;
    case 'number':
      if (!Number.isFinite(value)) throw notJson(path, `${value} is not a JSON number (RFC 8785 §3.2.2.3)`);
      out.push(String(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'undefined':
      throw notJson(path, 'undefined is not JSON; omit the property or use null');
    case 'bigint':
      throw notJson(path, 'a bigint is not a JSON number; convert it to a string or a safe number');
    case 'function':
    case 'symbol':
      throw notJson(path, `a ${typeof value} is not JSON`);
  }
  if (value === null) {
    out.push('null');
    return;
  }
  const object = value as object;
  if (ancestors.has(object)) throw notJson(path, 'a circular reference cannot be serialised');
  const toJSON: unknown = (object as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    // Honour toJSON (Date and friends) as JSON.stringify does, so an event serialises the same.
    write(toJSON.call(object), path, out, ancestors);
    return;
  }
  ancestors.add(object);
  if (Array.isArray(object)) writeArray(object, path, out, ancestors);
  else writeObject(object, path, out, ancestors);
  ancestors.delete(object);
}

function writeArray(array: readonly unknown[], path: string, out: string[], ancestors: Set<object>): void {
  out.push('[');
  for (let i = 0; i < array.length; i++) {
    if (i > 0) out.push(',');
    write(array[i], `${path}[${i}]`, out, ancestors);
  }
  out.push(']');
}

function writeObject(object: object, path: string, out: string[], ancestors: Set<object>): void {
  const proto: unknown = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    // Map, Set, typed arrays and class instances would otherwise serialise as {} or lose data.
    const name = (object.constructor as { name?: string } | undefined)?.name ?? 'object';
    throw notJson(path, `a ${name} is not a plain JSON object`);
  }
  // Default sort compares UTF-16 code units, which is exactly RFC 8785 §3.2.3.
  const keys = Object.keys(object).sort();
  const record = object as Record<string, unknown>;
  out.push('{');
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (i > 0) out.push(',');
    out.push(quote(key, path), ':');
    write(record[key], `${path}.${key}`, out, ancestors);
  }
  out.push('}');
}

function quote(text: string, path: string): string {
  if (!(text as unknown as WellFormedCheck).isWellFormed())
    throw notJson(path, 'a string with a lone surrogate is not valid Unicode (I-JSON)');
  return JSON.stringify(text);
}

import { CelEvalError } from './runtime.js';

/** CEL int is a signed 64-bit integer; leaving its range is an error, never a silent wrap. */
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

export function checkedInt(v: bigint): bigint {
  if (v < INT64_MIN || v > INT64_MAX) throw new CelEvalError('int overflow');
  return v;
}

export function intDivide(a: bigint, b: bigint): bigint {
  if (b === 0n) throw new CelEvalError('divide by zero');
  return checkedInt(a / b); // bigint division truncates toward zero, as CEL's does
}

export function intModulo(a: bigint, b: bigint): bigint {
  if (b === 0n) throw new CelEvalError('modulus by zero');
  return a % b;
}

/** Exact three-way comparison of a double with an int (NaN when unordered), as CEL compares mixed numbers. */
export function compareDoubleInt(a: number, b: bigint): number {
  if (Number.isNaN(a)) return Number.NaN;
  if (a === Number.POSITIVE_INFINITY) return 1;
  if (a === Number.NEGATIVE_INFINITY) return -1;
  const floor = BigInt(Math.floor(a));
  if (floor < b) return -1;
  if (floor > b) return 1;
  return Number.isInteger(a) ? 0 : 1;
}

/** Equality across CEL's bool, int, double and string values. */
export function primitiveEquals(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'bigint') return compareDoubleInt(a, b) === 0;
  if (typeof a === 'bigint' && typeof b === 'number') return compareDoubleInt(b, a) === 0;
  return a === b;
}

/** The int as an exactly equal double, or undefined when doubles cannot hold it. */
export function exactDouble(v: bigint): number | undefined {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function doubleToInt(v: number): bigint {
  if (!Number.isFinite(v)) throw new CelEvalError('range error converting double to int');
  const t = BigInt(Math.trunc(v));
  if (t < INT64_MIN || t > INT64_MAX) throw new CelEvalError('range error converting double to int');
  return t;
}

/** CEL measures strings in code points, not UTF-16 units. */
export function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

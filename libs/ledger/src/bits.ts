// Tree sizes may exceed 2^32, where JavaScript's bitwise operators (32-bit) silently wrap.
// These helpers are exact for every safe integer (< 2^53), which bounds the log size.

const TWO_32 = 2 ** 32;

export function isTreeSize(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** Number of bits needed to write `x` (0 for 0). */
export function bitLength(x: number): number {
  const hi = Math.floor(x / TWO_32);
  if (hi > 0) return 64 - Math.clz32(hi);
  return 32 - Math.clz32(x >>> 0);
}

/** Index of the lowest set bit of `x` (> 0). */
export function trailingZeros(x: number): number {
  const lo = x >>> 0;
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = Math.floor(x / TWO_32) >>> 0;
  return 32 + 31 - Math.clz32(hi & -hi);
}

export function xor(a: number, b: number): number {
  const hi = (Math.floor(a / TWO_32) ^ Math.floor(b / TWO_32)) >>> 0;
  const lo = ((a >>> 0) ^ (b >>> 0)) >>> 0;
  return hi * TWO_32 + lo;
}

export function shiftRight(x: number, bits: number): number {
  return Math.floor(x / 2 ** bits);
}

export function shiftLeft(x: number, bits: number): number {
  return x * 2 ** bits;
}

export function isOdd(x: number): boolean {
  return x % 2 === 1;
}

export function isPowerOfTwo(x: number): boolean {
  return x > 0 && x === 2 ** (bitLength(x) - 1);
}

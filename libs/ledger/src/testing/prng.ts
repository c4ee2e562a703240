/** Seeded PRNG (mulberry32) so randomized tests replay exactly from their seed. */
export function createPrng(seed: number): {
  next(): number;
  int(maxExclusive: number): number;
  bytes(n: number): Uint8Array;
} {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (maxExclusive: number): number => Math.floor(next() * maxExclusive);
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));
  return { next, int, bytes };
}

export function hex(text: string): Uint8Array {
  return Buffer.from(text, 'hex');
}

/** A copy of `bytes` with one bit flipped. */
export function flipBit(bytes: Uint8Array, byteIndex: number, bit = 0): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[byteIndex] = (copy[byteIndex] as number) ^ (1 << bit);
  return copy;
}

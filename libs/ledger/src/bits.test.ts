import { describe, expect, it } from 'vitest';
import { bitLength, isPowerOfTwo, shiftRight, trailingZeros, xor } from './bits.js';
import { consistencyPlan, inclusionPlan } from './proof-plan.js';
import { createPrng } from './testing/prng.js';

describe('53-bit tree arithmetic', () => {
  it('when values exceed 32 bits, then bit helpers agree with BigInt arithmetic', () => {
    const prng = createPrng(42);
    for (let i = 0; i < 5000; i++) {
      const a = Math.floor(prng.next() * 2 ** (1 + prng.int(53)));
      const b = Math.floor(prng.next() * 2 ** (1 + prng.int(53)));
      expect(bitLength(a)).toBe(a === 0 ? 0 : BigInt(a).toString(2).length);
      expect(xor(a, b)).toBe(Number(BigInt(a) ^ BigInt(b)));
      if (a > 0)
        expect(trailingZeros(a)).toBe(
          BigInt(a).toString(2).length - BigInt(a).toString(2).lastIndexOf('1') - 1,
        );
      expect(shiftRight(a, 7)).toBe(Number(BigInt(a) >> 7n));
    }
    expect(isPowerOfTwo(2 ** 52)).toBe(true);
    expect(isPowerOfTwo(2 ** 52 + 2)).toBe(false);
  });

  it('when a tree has more than 2^32 leaves, then proofs name one node per level, none beyond the tree', () => {
    const size = 2 ** 40 + 12345;
    const plan = inclusionPlan(2 ** 33 + 7, size);
    expect(plan.ids.length).toBeGreaterThan(40);
    for (const id of plan.ids) expect((id.index + 1) * 2 ** id.level).toBeLessThanOrEqual(size);
    const consistency = consistencyPlan(2 ** 35 + 3, size);
    for (const id of consistency.ids) expect((id.index + 1) * 2 ** id.level).toBeLessThanOrEqual(size);
  });
});

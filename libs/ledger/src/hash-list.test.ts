import { describe, expect, it } from 'vitest';
import { HashList } from './hash-list.js';

function list(n: number, changedAt?: number): HashList {
  const hashes = new HashList(n);
  for (let i = 0; i < n; i++) {
    const hash = new Uint8Array(32);
    new DataView(hash.buffer).setUint32(0, i);
    if (i === changedAt) hash[31] = 1;
    hashes.push(hash);
  }
  return hashes;
}

describe('HashList.commonPrefix', () => {
  it('when two lists first differ anywhere, including at block edges, then it names that position', () => {
    const n = 3 * 4096 + 5;
    const expected = list(n);
    for (const at of [0, 1, 4095, 4096, 4097, 8191, 8192, n - 1]) {
      expect(expected.commonPrefix(list(n, at))).toBe(at);
      expect(list(n, at).commonPrefix(expected)).toBe(at);
    }
  });

  it('when one list is a prefix of the other, then the shorter length is shared', () => {
    expect(list(5000).commonPrefix(list(4097))).toBe(4097);
    expect(list(10).commonPrefix(list(10))).toBe(10);
    expect(list(0).commonPrefix(list(3))).toBe(0);
  });
});

describe('HashList.pushPacked', () => {
  it('when packed pages are appended past the capacity, then the list equals one built hash by hash', () => {
    const byOne = list(5000);
    const packed = new HashList(1);
    const all = byOne.packed();
    for (let at = 0; at < all.length; at += 32 * 777) packed.pushPacked(all.subarray(at, at + 32 * 777));
    expect(packed.length).toBe(5000);
    expect(packed.equals(byOne)).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { NodeCache } from './node-cache.js';
import { rangeNodes, rangePosition } from './node-id.js';

const hash = (n: number): Uint8Array => new Uint8Array(32).fill(n);

describe('NodeCache', () => {
  it('when nodes below the minimum level are offered, then only the upper ones are kept', () => {
    const cache = new NodeCache(8, 2);
    cache.put(1, 0, hash(1));
    cache.put(2, 0, hash(2));
    expect(cache.get({ level: 1, index: 0 })).toBeUndefined();
    expect(cache.get({ level: 2, index: 0 })).toEqual(hash(2));
    expect(cache.get({ level: 2, index: 1 })).toBeUndefined();
  });

  it('when it is full, then the oldest node makes room and no other node is confused with it', () => {
    const cache = new NodeCache(3, 0);
    for (let i = 0; i < 5; i++) cache.put(0, i, hash(i + 1));
    expect(cache.size).toBe(3);
    expect(cache.get({ level: 0, index: 0 })).toBeUndefined();
    expect(cache.get({ level: 0, index: 1 })).toBeUndefined();
    expect([2, 3, 4].map((i) => cache.get({ level: 0, index: i })?.[0])).toEqual([3, 4, 5]);
    // (level 1, index 0) and (level 0, index 1) cover different leaves: distinct keys.
    cache.put(1, 0, hash(9));
    expect(cache.get({ level: 0, index: 1 })).toBeUndefined();
    expect(cache.get({ level: 1, index: 0 })?.[0]).toBe(9);
  });

  it('when a caller changes a hash it was given or put, then the cached hash stays the same', () => {
    const cache = new NodeCache(4, 0);
    const given = hash(7);
    cache.put(3, 5, given);
    given.fill(0);
    const got = cache.get({ level: 3, index: 5 }) as Uint8Array;
    got.fill(1);
    expect(cache.get({ level: 3, index: 5 })).toEqual(hash(7));
  });
});

describe('rangePosition', () => {
  it('when asked about any node of small trees, then it finds exactly the compact range, in order', () => {
    for (let size = 0; size <= 300; size++) {
      const range = rangeNodes(0, size);
      range.forEach((node, position) => {
        expect(rangePosition(size, node)).toBe(position);
      });
      for (let level = 0; level <= 9; level++) {
        for (let index = 0; index < Math.ceil(size / 2 ** level) + 1; index++) {
          const inRange = range.some((n) => n.level === level && n.index === index);
          if (!inRange) expect(rangePosition(size, { level, index })).toBeUndefined();
        }
      }
    }
  });
});

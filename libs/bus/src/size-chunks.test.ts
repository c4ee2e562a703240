import { describe, expect, it } from 'vitest';
import { sizeChunks } from './size-chunks.js';

describe('sizeChunks', () => {
  const size = (n: number) => n;

  it('when items fit under the limit together, then they stay in one run', () => {
    expect(sizeChunks([1, 2, 3], size, 10)).toEqual([[1, 2, 3]]);
    expect(sizeChunks([], size, 10)).toEqual([]);
  });

  it('when the items add up past the limit, then runs are cut in order, each within it', () => {
    expect(sizeChunks([4, 4, 4, 4, 1], size, 10)).toEqual([
      [4, 4],
      [4, 4, 1],
    ]);
  });

  it('when one item alone is above the limit, then it is sent alone, between the others', () => {
    expect(sizeChunks([2, 50, 3, 4], size, 10)).toEqual([[2], [50], [3, 4]]);
  });
});

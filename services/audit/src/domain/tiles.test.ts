import { Frontier, leafHash } from '@flowloom/ledger';
import { describe, expect, it } from 'vitest';
import { nodeInTile, nodePosition, nodesBefore, packTile } from './tiles.js';

describe('node tiles', () => {
  it('when leaves are appended, then every completed node sits at the position computed from its coordinates', () => {
    const frontier = Frontier.empty();
    const emitted: Array<{ level: number; index: number }> = [];
    for (let i = 0; i < 300; i++) {
      frontier.push(leafHash(Buffer.from(`e${i}`)), (level, index) => emitted.push({ level, index }));
      expect(emitted.length).toBe(nodesBefore(i + 1));
    }
    for (const [position, node] of emitted.entries())
      expect(nodePosition(node.level, node.index)).toBe(position);
  });

  it('when appends of uneven sizes are packed, then each node is found in the tile that completed it', () => {
    const frontier = Frontier.empty();
    const tiles: Array<{ startSize: number; endSize: number; hashes: Uint8Array }> = [];
    const all = new Map<string, Uint8Array>();
    for (const size of [1, 2, 5, 1, 64, 3, 100]) {
      const start = frontier.size;
      const nodes: Array<{ level: number; index: number; hash: Uint8Array }> = [];
      for (let i = 0; i < size; i++) {
        frontier.push(leafHash(Buffer.from(`x${start + i}`)), (level, index, hash) => {
          nodes.push({ level, index, hash });
          all.set(`${level}/${index}`, hash);
        });
      }
      tiles.push({
        startSize: start,
        endSize: frontier.size,
        hashes: packTile(start, frontier.size, nodes.reverse()),
      });
    }
    for (const [key, hash] of all) {
      const [level, index] = key.split('/').map(Number) as [number, number];
      const holders = tiles.filter((t) => nodeInTile(t, level, index) !== undefined);
      expect(holders).toHaveLength(1);
      expect(
        Buffer.from(nodeInTile(holders[0] as (typeof tiles)[number], level, index) ?? []).equals(
          Buffer.from(hash),
        ),
      ).toBe(true);
    }
  });

  it('when nodes do not belong to an append, then packing refuses', () => {
    expect(() => packTile(0, 2, [])).toThrow(/completes 3 nodes/);
    const h = new Uint8Array(32);
    expect(() =>
      packTile(0, 2, [
        { level: 0, index: 0, hash: h },
        { level: 0, index: 0, hash: h },
        { level: 1, index: 0, hash: h },
      ]),
    ).toThrow(/does not belong/);
  });
});

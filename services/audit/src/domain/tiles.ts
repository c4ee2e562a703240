// Node tiles: the nodes an append completes, packed in one blob per append.
//
// Appending leaf p completes 1 + tz(p + 1) nodes: the leaf itself (level 0) and one parent per
// trailing one-bit of p, in increasing level (tz = trailing zeros). Over leaves [0, p) that is
// p + Σ tz(m) for m = 1..p = 2p − popcount(p) nodes (Legendre). So node (level, index), completed by
// leaf p = (index + 1)·2^level − 1, is node number 2p − popcount(p) + level of the whole log, and a
// tile covering leaves [start, end) holds nodes [position(start), position(end)) in that order.

export const HASH_BYTES = 32;

function popcount(x: number): number {
  let count = 0;
  let rest = x;
  while (rest > 0) {
    count += rest % 2;
    rest = Math.floor(rest / 2);
  }
  return count;
}

/** Number of nodes completed by appending leaves [0, leaves). */
export function nodesBefore(leaves: number): number {
  return 2 * leaves - popcount(leaves);
}

/** Position of node (level, index) among all nodes in completion order. */
export function nodePosition(level: number, index: number): number {
  const leaf = (index + 1) * 2 ** level - 1;
  return nodesBefore(leaf) + level;
}

/** The tree size at which node (level, index) is complete. */
export function completionSize(level: number, index: number): number {
  return (index + 1) * 2 ** level;
}

/** Packs the nodes an append from `startSize` to `endSize` completed; every slot must be filled once. */
export function packTile(
  startSize: number,
  endSize: number,
  nodes: ReadonlyArray<{ level: number; index: number; hash: Uint8Array }>,
): Uint8Array {
  const base = nodesBefore(startSize);
  const count = nodesBefore(endSize) - base;
  if (nodes.length !== count) {
    throw new Error(
      `an append from ${startSize} to ${endSize} completes ${count} nodes, got ${nodes.length}`,
    );
  }
  const packed = new Uint8Array(count * HASH_BYTES);
  const filled = new Uint8Array(count);
  for (const node of nodes) {
    const slot = nodePosition(node.level, node.index) - base;
    if (slot < 0 || slot >= count || filled[slot] === 1 || node.hash.length !== HASH_BYTES) {
      throw new Error(
        `node (${node.level}, ${node.index}) does not belong to the append ${startSize}..${endSize}`,
      );
    }
    filled[slot] = 1;
    packed.set(node.hash, slot * HASH_BYTES);
  }
  return packed;
}

/** The hash of node (level, index) inside a tile, or undefined when the tile does not hold it. */
export function nodeInTile(
  tile: { startSize: number; endSize: number; hashes: Uint8Array },
  level: number,
  index: number,
): Uint8Array | undefined {
  const completed = completionSize(level, index);
  if (completed <= tile.startSize || completed > tile.endSize) return undefined;
  const offset = (nodePosition(level, index) - nodesBefore(tile.startSize)) * HASH_BYTES;
  if (offset + HASH_BYTES > tile.hashes.length) return undefined;
  return tile.hashes.subarray(offset, offset + HASH_BYTES);
}

import { bitLength, shiftLeft, shiftRight, trailingZeros } from './bits.js';

/**
 * A complete subtree: the node at `level` (0 = leaves) and `index` (from the left) covers leaves
 * [index·2^level, (index+1)·2^level). Its hash never changes once the tree reaches the end of that
 * range, which is what lets a store keep it forever and proofs read it instead of recomputing.
 */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

export function nodeId(level: number, index: number): NodeId {
  return { level, index };
}

/** First leaf after the node's coverage. */
export function coverageEnd(node: NodeId): number {
  return shiftLeft(node.index + 1, node.level);
}

export function sibling(node: NodeId): NodeId {
  return { level: node.level, index: node.index % 2 === 0 ? node.index + 1 : node.index - 1 };
}

export function parent(node: NodeId): NodeId {
  return { level: node.level + 1, index: shiftRight(node.index, 1) };
}

/**
 * The compact range of leaves [begin, end): the fewest complete subtrees covering it, left to
 * right. For begin = 0 these are the "frontier" of a tree of size `end`, one per set bit.
 */
export function rangeNodes(begin: number, end: number): NodeId[] {
  const nodes: NodeId[] = [];
  let at = begin;
  while (at < end) {
    const fits = bitLength(end - at) - 1;
    const level = at === 0 ? fits : Math.min(trailingZeros(at), fits);
    nodes.push({ level, index: shiftRight(at, level) });
    at += 2 ** level;
  }
  return nodes;
}

/**
 * Where `node` sits in `rangeNodes(0, size)`, or undefined when it is not one of them. The range
 * holds one node per set bit of `size`, largest first; the one at level l ends where `size`
 * with its bits below l cleared does.
 */
export function rangePosition(size: number, node: NodeId): number | undefined {
  const above = shiftRight(size, node.level);
  if (above % 2 !== 1 || node.index !== above - 1) return undefined;
  let position = 0;
  for (let rest = shiftRight(above, 1); rest > 0; rest = shiftRight(rest, 1)) position += rest % 2;
  return position;
}

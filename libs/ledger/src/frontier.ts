import { isTreeSize } from './bits.js';
import { LedgerError } from './errors.js';
import { isHash, nodeHash } from './hash.js';
import { rangeNodes } from './node-id.js';
import { foldRight } from './proof-plan.js';

/** Called for every subtree an append completes, leaf first, then each new parent. */
export type NodeSink = (level: number, index: number, hash: Uint8Array) => void;

/**
 * The compact range [0, size): one complete-subtree hash per set bit of `size`, largest (leftmost)
 * first. It is all an appender needs to extend the tree and all a verifier needs to stream
 * millions of leaves in O(log n) memory.
 */
export class Frontier {
  private readonly hashes: Uint8Array[];
  private readonly levels: number[];
  private count: number;

  private constructor(size: number, hashes: Uint8Array[], levels: number[]) {
    this.count = size;
    this.hashes = hashes;
    this.levels = levels;
  }

  static empty(): Frontier {
    return new Frontier(0, [], []);
  }

  /** Rebuilds the frontier of a stored tree from the hashes of `rootPlan(size)`, in that order. */
  static fromRange(size: number, hashes: readonly Uint8Array[]): Frontier {
    if (!isTreeSize(size)) throw new LedgerError('invalid_argument', 'tree size must be a safe integer ≥ 0');
    const nodes = rangeNodes(0, size);
    if (nodes.length !== hashes.length || !hashes.every(isHash)) {
      throw new LedgerError('storage', `a tree of size ${size} needs ${nodes.length} frontier hashes`);
    }
    return new Frontier(
      size,
      [...hashes],
      nodes.map((node) => node.level),
    );
  }

  get size(): number {
    return this.count;
  }

  clone(): Frontier {
    return new Frontier(this.count, [...this.hashes], [...this.levels]);
  }

  /** Appends one leaf hash, reporting the completed subtrees to `sink`. */
  push(leaf: Uint8Array, sink?: NodeSink): void {
    let index = this.count;
    let level = 0;
    let hash = leaf;
    sink?.(level, index, hash);
    while (this.levels.length > 0 && this.levels[this.levels.length - 1] === level) {
      this.levels.pop();
      hash = nodeHash(this.hashes.pop() as Uint8Array, hash);
      level++;
      index = Math.floor(index / 2);
      sink?.(level, index, hash);
    }
    // A leaf kept unmerged is the caller's buffer: copy it so later reuse of that buffer by the
    // caller cannot change the root. Merged hashes are fresh digests already.
    this.hashes.push(level === 0 ? Uint8Array.from(hash) : hash);
    this.levels.push(level);
    this.count++;
  }

  /** The hashes of `rangeNodes(0, size)`, in that order: read-only, copy before handing out. */
  rangeHashes(): readonly Uint8Array[] {
    return this.hashes;
  }

  /** MTH of the leaves pushed so far. */
  root(): Uint8Array {
    return foldRight(this.hashes);
  }
}

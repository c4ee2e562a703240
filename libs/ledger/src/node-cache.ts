import { HASH_SIZE } from './hash.js';
import type { NodeId } from './node-id.js';

/** A unique number per node: its in-order position, exact while the tree has fewer than 2^52 leaves. */
function nodeKey(level: number, index: number): number {
  return (2 * index + 1) * 2 ** level - 1;
}

/**
 * Hashes of complete subtrees kept in memory. A complete subtree's hash never changes, so a cached
 * one is never stale; only nodes at `minLevel` and above are kept: few (2/2^minLevel of all
 * nodes), and shared by the proofs of many leaves. Packed in one ring buffer (32 bytes a slot, no
 * object per hash); when full, the oldest is replaced.
 */
export class NodeCache {
  private readonly hashes: Uint8Array;
  private readonly keys: Float64Array;
  private readonly slots = new Map<number, number>();
  private next = 0;

  constructor(
    private readonly capacity = 1 << 15,
    readonly minLevel = 8,
  ) {
    this.hashes = new Uint8Array(capacity * HASH_SIZE);
    this.keys = new Float64Array(capacity).fill(-1);
  }

  get size(): number {
    return this.slots.size;
  }

  /** A copy of the node's hash, or undefined when it is not cached. */
  get(id: NodeId): Uint8Array | undefined {
    const slot = this.slots.get(nodeKey(id.level, id.index));
    if (slot === undefined) return undefined;
    return this.hashes.slice(slot * HASH_SIZE, (slot + 1) * HASH_SIZE);
  }

  /** Keeps the hash of a complete node (ignored below `minLevel`). */
  put(level: number, index: number, hash: Uint8Array): void {
    if (level < this.minLevel || this.capacity === 0) return;
    const key = nodeKey(level, index);
    if (this.slots.has(key)) return;
    const slot = this.next;
    this.next = (this.next + 1) % this.capacity;
    const evicted = this.keys[slot] as number;
    if (evicted >= 0) this.slots.delete(evicted);
    this.keys[slot] = key;
    this.hashes.set(hash, slot * HASH_SIZE);
    this.slots.set(key, slot);
  }
}

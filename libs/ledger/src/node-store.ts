import type { NodeId } from './node-id.js';

export type MaybePromise<T> = T | Promise<T>;

export interface StoredNode {
  readonly level: number;
  readonly index: number;
  readonly hash: Uint8Array;
}

/**
 * Storage port for the Merkle tree: the hashes of complete subtrees addressed by (level, index).
 * A complete subtree's hash is immutable, so a store only ever inserts; roots and proofs for any
 * size up to `readTreeSize()` cost one batched read of O(log n) nodes.
 *
 * Every method may answer synchronously (in-memory) or with a promise (Postgres). An adapter is
 * free to lay nodes out as rows of (level, index, hash), or to pack them into C2SP tlog-tiles
 * style tiles, as long as it answers these calls.
 */
export interface NodeStore {
  /** Number of leaves whose nodes have been written (0 for a new log). */
  readTreeSize(): MaybePromise<number>;
  /**
   * Hashes of the given complete subtrees, in the order asked. Must fail, never invent a hash,
   * when a node is missing. Implement as one round trip: proofs ask for all their nodes at once.
   */
  readNodes(ids: readonly NodeId[]): MaybePromise<readonly Uint8Array[]>;
  /**
   * Persists the subtrees completed by an append together with the new tree size, atomically:
   * a reader must never see a size whose nodes are not all there. Nodes of one level arrive in
   * increasing index order, and a size never decreases.
   */
  writeNodes(nodes: readonly StoredNode[], treeSize: number): MaybePromise<void>;
}

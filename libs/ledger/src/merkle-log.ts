import { type EntryInput, entryLeafHash } from './entry.js';
import { LedgerError } from './errors.js';
import { Frontier } from './frontier.js';
import { isHash } from './hash.js';
import type { NodeStore, StoredNode } from './node-store.js';
import { assembleProof, consistencyPlan, foldRight, inclusionPlan, rootPlan } from './proof-plan.js';

export interface AppendResult {
  /** Index of the first appended entry. */
  readonly firstIndex: number;
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  readonly leafHashes: readonly Uint8Array[];
}

/**
 * An append-only RFC 9162 log over a NodeStore. Appends hash only the new leaves and the subtrees
 * they complete (amortised two hashes per entry); roots and proofs for any past or current size
 * read O(log n) stored nodes in one batch. One MerkleLog must be the only writer of its store;
 * appends are queued so concurrent callers cannot interleave.
 */
export class MerkleLog {
  private readonly store: NodeStore;
  private frontier: Frontier;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(store: NodeStore, frontier: Frontier) {
    this.store = store;
    this.frontier = frontier;
  }

  static async open(store: NodeStore): Promise<MerkleLog> {
    const size = await store.readTreeSize();
    const hashes = await store.readNodes(rootPlan(size));
    return new MerkleLog(store, Frontier.fromRange(size, hashes));
  }

  /** Number of committed entries. */
  get size(): number {
    return this.frontier.size;
  }

  /** Root of the committed tree, computed from the in-memory frontier without reads. */
  rootHash(): Uint8Array {
    return this.frontier.root();
  }

  appendEntries(entries: readonly EntryInput[]): Promise<AppendResult> {
    const base = this.size;
    let leafHashes: Uint8Array[];
    try {
      leafHashes = entries.map((entry, i) => entryLeafHash(entry, base + i));
    } catch (error) {
      return Promise.reject(error);
    }
    return this.appendLeafHashes(leafHashes);
  }

  /**
   * Appends precomputed leaf hashes (SHA-256(0x00 ‖ entry)), e.g. when re-importing a log. The
   * buffers are handed to the store as they are: do not reuse them until the promise settles.
   */
  appendLeafHashes(leafHashes: readonly Uint8Array[]): Promise<AppendResult> {
    if (!leafHashes.every(isHash)) {
      return Promise.reject(new LedgerError('invalid_argument', 'every leaf hash must be 32 bytes'));
    }
    const run = this.queue.then(() => this.commit(leafHashes));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async commit(leafHashes: readonly Uint8Array[]): Promise<AppendResult> {
    // Work on a copy and adopt it only once the store has the nodes, so a failed write leaves
    // memory and storage agreeing on the old size.
    const next = this.frontier.clone();
    const nodes: StoredNode[] = [];
    const sink = (level: number, index: number, hash: Uint8Array): void => {
      nodes.push({ level, index, hash });
    };
    for (const leaf of leafHashes) next.push(leaf, sink);
    await this.store.writeNodes(nodes, next.size);
    const firstIndex = this.frontier.size;
    this.frontier = next;
    return { firstIndex, treeSize: next.size, rootHash: next.root(), leafHashes };
  }

  /** Root of the tree as it was at `size` (≤ current size). */
  async rootHashAt(size: number): Promise<Uint8Array> {
    this.requireCommitted(size);
    return foldRight(await this.store.readNodes(rootPlan(size)));
  }

  /** RFC 9162 inclusion proof of entry `index` in the tree of `size` (default: current). */
  async inclusionProof(index: number, size = this.size): Promise<Uint8Array[]> {
    this.requireCommitted(size);
    const plan = inclusionPlan(index, size);
    return assembleProof(plan, await this.store.readNodes(plan.ids));
  }

  /** RFC 9162 consistency proof from the tree of `size1` to the tree of `size2` (default: current). */
  async consistencyProof(size1: number, size2 = this.size): Promise<Uint8Array[]> {
    this.requireCommitted(size2);
    const plan = consistencyPlan(size1, size2);
    return assembleProof(plan, await this.store.readNodes(plan.ids));
  }

  private requireCommitted(size: number): void {
    if (size > this.size) {
      throw new LedgerError('invalid_argument', `tree size ${size} is beyond the log's size ${this.size}`);
    }
  }
}

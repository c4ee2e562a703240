import { setImmediate as yieldTurn } from 'node:timers/promises';
import { type EntryInput, entryLeafHash } from './entry.js';
import { LedgerError } from './errors.js';
import { Frontier } from './frontier.js';
import { isHash } from './hash.js';
import { NodeCache } from './node-cache.js';
import { type NodeId, rangePosition } from './node-id.js';
import type { NodeStore, StoredNode } from './node-store.js';
import { assembleProof, consistencyPlan, foldRight, inclusionPlan, rootPlan } from './proof-plan.js';

/** Leaves hashed into the tree between turns of the event loop (~1 ms). */
const PUSH_SLICE = 1024;

/** Compact ranges kept for past sizes: proofs are mostly asked against the latest few checkpoints. */
const RANGES_KEPT = 8;

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
 * read O(log n) stored nodes in one batch, fewer when memory has them: the current size's
 * compact range is the frontier, those of recently used sizes and the upper nodes (complete, so
 * never changing) are cached. One MerkleLog must be the only writer of its store; appends are
 * queued so concurrent callers cannot interleave.
 */
export class MerkleLog {
  private readonly store: NodeStore;
  private frontier: Frontier;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly cache: NodeCache;
  /** size → hashes of rootPlan(size), for recently used past sizes (oldest first). */
  private readonly ranges = new Map<number, readonly Uint8Array[]>();

  private constructor(store: NodeStore, frontier: Frontier, cache: NodeCache) {
    this.store = store;
    this.frontier = frontier;
    this.cache = cache;
  }

  static async open(store: NodeStore, options: { cache?: NodeCache } = {}): Promise<MerkleLog> {
    const size = await store.readTreeSize();
    const hashes = await store.readNodes(rootPlan(size));
    return new MerkleLog(store, Frontier.fromRange(size, hashes), options.cache ?? new NodeCache());
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
    // Hashing thousands of leaves takes milliseconds: the caller's thread may be serving
    // requests, so a large append yields between slices (`next` is ours alone meanwhile). Each
    // slice is a plain loop: one awaiting inside it slowed small appends by ~20%.
    for (let at = 0; at < leafHashes.length; at += PUSH_SLICE) {
      if (at > 0) await yieldTurn();
      const end = Math.min(leafHashes.length, at + PUSH_SLICE);
      for (let i = at; i < end; i++) next.push(leafHashes[i] as Uint8Array, sink);
    }
    await this.store.writeNodes(nodes, next.size);
    // Cached only once durable: a failed write may be followed by other leaves at these positions.
    const minLevel = this.cache.minLevel;
    for (const node of nodes) if (node.level >= minLevel) this.cache.put(node.level, node.index, node.hash);
    const firstIndex = this.frontier.size;
    this.frontier = next;
    return { firstIndex, treeSize: next.size, rootHash: next.root(), leafHashes };
  }

  /** Root of the tree as it was at `size` (≤ current size). */
  async rootHashAt(size: number): Promise<Uint8Array> {
    this.requireCommitted(size);
    return foldRight((await this.readNodes([], size)).range);
  }

  /** RFC 9162 inclusion proof of entry `index` in the tree of `size` (default: current). */
  async inclusionProof(index: number, size = this.size): Promise<Uint8Array[]> {
    this.requireCommitted(size);
    const plan = inclusionPlan(index, size);
    return assembleProof(plan, (await this.readNodes(plan.ids, size)).hashes);
  }

  /** RFC 9162 consistency proof from the tree of `size1` to the tree of `size2` (default: current). */
  async consistencyProof(size1: number, size2 = this.size): Promise<Uint8Array[]> {
    this.requireCommitted(size2);
    const plan = consistencyPlan(size1, size2);
    return assembleProof(plan, (await this.readNodes(plan.ids, size2)).hashes);
  }

  /**
   * Hashes of complete nodes of the tree of `size`, in the order asked, and its compact range
   * (read-only). Memory answers what it can; the rest, plus the compact range of `size` when it is
   * not known yet (most of it is in any proof anyway), is one store read.
   */
  private async readNodes(
    ids: readonly NodeId[],
    size: number,
  ): Promise<{ hashes: Uint8Array[]; range: readonly Uint8Array[] }> {
    let range: readonly Uint8Array[] | undefined =
      size === this.frontier.size ? this.frontier.rangeHashes() : this.ranges.get(size);
    const rangeIds = range === undefined ? rootPlan(size) : [];
    const fetch: NodeId[] = [...rangeIds];
    const found: Array<Uint8Array | number> = ids.map((id) => {
      const position = rangePosition(size, id);
      if (position !== undefined) return -1 - position;
      const cached = this.cache.get(id);
      if (cached) return cached;
      fetch.push(id);
      return fetch.length - 1;
    });
    let read: readonly Uint8Array[] = [];
    if (fetch.length > 0) {
      read = await this.store.readNodes(fetch);
      if (read.length !== fetch.length) {
        throw new LedgerError('storage', `expected ${fetch.length} node hashes, got ${read.length}`);
      }
      fetch.forEach((id, j) => {
        this.cache.put(id.level, id.index, read[j] as Uint8Array);
      });
    }
    if (range === undefined) {
      range = read.slice(0, rangeIds.length);
      this.rememberRange(size, range);
    }
    const known = range;
    // Memory's hashes are copied: a caller may keep or change what it is given.
    const hashes = found.map((at) =>
      typeof at !== 'number'
        ? at
        : at < 0
          ? Uint8Array.from(known[-1 - at] as Uint8Array)
          : (read[at] as Uint8Array),
    );
    return { hashes, range: known };
  }

  private rememberRange(size: number, hashes: readonly Uint8Array[]): void {
    if (size === this.frontier.size) return;
    this.ranges.set(size, hashes);
    if (this.ranges.size > RANGES_KEPT) this.ranges.delete(this.ranges.keys().next().value as number);
  }

  private requireCommitted(size: number): void {
    if (size > this.size) {
      throw new LedgerError('invalid_argument', `tree size ${size} is beyond the log's size ${this.size}`);
    }
  }
}

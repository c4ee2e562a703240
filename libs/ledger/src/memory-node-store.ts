import { LedgerError } from './errors.js';
import { HASH_SIZE } from './hash.js';
import type { NodeId } from './node-id.js';
import type { NodeStore, StoredNode } from './node-store.js';

// Fixed-size chunks instead of one growing buffer per level: no reallocation spikes that would
// briefly double the memory of a 10-million-leaf tree.
const NODES_PER_CHUNK = 1 << 16;
const CHUNK_BYTES = NODES_PER_CHUNK * HASH_SIZE;

class Level {
  readonly chunks: Buffer[] = [];
  count = 0;

  append(hash: Uint8Array): void {
    const slot = this.count % NODES_PER_CHUNK;
    if (slot === 0) this.chunks.push(Buffer.allocUnsafeSlow(CHUNK_BYTES));
    (this.chunks[this.chunks.length - 1] as Buffer).set(hash, slot * HASH_SIZE);
    this.count++;
  }

  read(index: number): Uint8Array {
    const chunk = this.chunks[Math.floor(index / NODES_PER_CHUNK)] as Buffer;
    const offset = (index % NODES_PER_CHUNK) * HASH_SIZE;
    // A copy: callers may keep or mutate it without corrupting the store.
    return Uint8Array.prototype.slice.call(chunk, offset, offset + HASH_SIZE);
  }
}

/**
 * The NodeStore for tests, benchmarks and the embedded single-process mode before persistence:
 * about 64 bytes per leaf (every complete subtree is kept).
 */
export class InMemoryNodeStore implements NodeStore {
  private readonly levels: Level[] = [];
  private size = 0;

  readTreeSize(): number {
    return this.size;
  }

  readNodes(ids: readonly NodeId[]): Uint8Array[] {
    return ids.map(({ level, index }) => {
      const stored = this.levels[level];
      if (stored === undefined || index >= stored.count || index < 0) {
        throw new LedgerError('storage', `node (level ${level}, index ${index}) is not stored`);
      }
      return stored.read(index);
    });
  }

  writeNodes(nodes: readonly StoredNode[], treeSize: number): void {
    if (treeSize < this.size) {
      throw new LedgerError('storage', `tree size cannot shrink from ${this.size} to ${treeSize}`);
    }
    // Validate the whole batch first so a rejected write leaves the store untouched.
    const next = this.levels.map((stored) => stored.count);
    for (const { level, index, hash } of nodes) {
      const expected = next[level] ?? 0;
      // Append-only and gap-free per level: anything else means a writer bug or two writers.
      if (index !== expected) {
        throw new LedgerError('storage', `node (level ${level}, index ${index}) written out of order`);
      }
      if (hash.length !== HASH_SIZE) throw new LedgerError('storage', 'a node hash must be 32 bytes');
      next[level] = expected + 1;
    }
    for (const { level, hash } of nodes) {
      while (this.levels.length <= level) this.levels.push(new Level());
      (this.levels[level] as Level).append(hash);
    }
    this.size = treeSize;
  }
}

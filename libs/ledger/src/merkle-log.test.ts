import { describe, expect, it } from 'vitest';
import { leafHash, toHex } from './hash.js';
import { InMemoryNodeStore } from './memory-node-store.js';
import { MerkleLog } from './merkle-log.js';
import type { NodeId } from './node-id.js';
import type { NodeStore, StoredNode } from './node-store.js';
import { merkleTreeHash } from './rfc9162.js';

/** An async store that counts round trips and can be told to fail writes. */
class AsyncStore implements NodeStore {
  readonly inner = new InMemoryNodeStore();
  reads = 0;
  failWrites = false;

  async readTreeSize(): Promise<number> {
    return this.inner.readTreeSize();
  }

  async readNodes(ids: readonly NodeId[]): Promise<readonly Uint8Array[]> {
    this.reads++;
    await new Promise((resolve) => setTimeout(resolve, 1));
    return this.inner.readNodes(ids);
  }

  async writeNodes(nodes: readonly StoredNode[], treeSize: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (this.failWrites) throw new Error('disk full');
    this.inner.writeNodes(nodes, treeSize);
  }
}

const entry = (i: number): string => `{"seq":${i}}`;

describe('MerkleLog over a NodeStore', () => {
  it('when a log is reopened from its store, then it continues with the same root and proofs', async () => {
    const store = new InMemoryNodeStore();
    const first = await MerkleLog.open(store);
    await first.appendEntries(Array.from({ length: 37 }, (_, i) => entry(i)));
    const reopened = await MerkleLog.open(store);
    expect(reopened.size).toBe(37);
    expect(toHex(reopened.rootHash())).toBe(toHex(first.rootHash()));
    await reopened.appendEntries([entry(37)]);
    const leaves = Array.from({ length: 38 }, (_, i) => leafHash(Buffer.from(entry(i))));
    expect(toHex(reopened.rootHash())).toBe(toHex(merkleTreeHash(leaves)));
  });

  it('when the store is asynchronous, then a proof costs one batched read', async () => {
    const store = new AsyncStore();
    const log = await MerkleLog.open(store);
    await log.appendEntries(Array.from({ length: 1000 }, (_, i) => entry(i)));
    store.reads = 0;
    await log.inclusionProof(777);
    await log.consistencyProof(333);
    expect(store.reads).toBe(2);
  });

  it('when appends race, then they are applied one after the other in call order', async () => {
    const log = await MerkleLog.open(new AsyncStore());
    const results = await Promise.all([0, 1, 2, 3].map((i) => log.appendEntries([entry(i), entry(i + 100)])));
    expect(results.map((r) => r.firstIndex)).toEqual([0, 2, 4, 6]);
    expect(log.size).toBe(8);
  });

  it('when the store rejects a write, then the log keeps its previous size and can append again', async () => {
    const store = new AsyncStore();
    const log = await MerkleLog.open(store);
    await log.appendEntries([entry(0)]);
    const root = toHex(log.rootHash());
    store.failWrites = true;
    await expect(log.appendEntries([entry(1)])).rejects.toThrow('disk full');
    expect(log.size).toBe(1);
    expect(toHex(log.rootHash())).toBe(root);
    store.failWrites = false;
    await log.appendEntries([entry(1)]);
    expect(log.size).toBe(2);
  });

  it('when the caller reuses its leaf-hash buffer after an append, then the root does not change', async () => {
    const log = await MerkleLog.open(new InMemoryNodeStore());
    const buffer = new Uint8Array(32).fill(1);
    await log.appendLeafHashes([buffer]);
    const root = toHex(log.rootHash());
    buffer.fill(2);
    expect(toHex(log.rootHash())).toBe(root);
    expect(toHex(await log.rootHashAt(1))).toBe(root);
  });

  it('when an entry could not be exported one per line, then it is refused', async () => {
    const log = await MerkleLog.open(new InMemoryNodeStore());
    await expect(log.appendEntries(['{"a":\n1}'])).rejects.toThrow(/newline/);
    await expect(log.appendEntries(['{"$pruned":"00"}'])).rejects.toThrow(/pruned-marker/);
    await expect(log.appendLeafHashes([new Uint8Array(31)])).rejects.toThrow(/32 bytes/);
  });

  it('when the in-memory store is written out of order, then it refuses without partial writes', () => {
    const store = new InMemoryNodeStore();
    const hash = new Uint8Array(32);
    expect(() =>
      store.writeNodes(
        [
          { level: 0, index: 0, hash },
          { level: 0, index: 2, hash },
        ],
        3,
      ),
    ).toThrow(/out of order/);
    expect(store.readTreeSize()).toBe(0);
    expect(() => store.readNodes([{ level: 0, index: 0 }])).toThrow(/not stored/);
  });
});

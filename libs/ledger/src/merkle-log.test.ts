import { describe, expect, it } from 'vitest';
import { leafHash, toHex } from './hash.js';
import { InMemoryNodeStore } from './memory-node-store.js';
import { MerkleLog } from './merkle-log.js';
import { NodeCache } from './node-cache.js';
import type { NodeId } from './node-id.js';
import type { NodeStore, StoredNode } from './node-store.js';
import { merkleTreeHash, referenceConsistencyProof, referenceInclusionProof } from './rfc9162.js';
import { countTurns } from './testing/event-loop.js';

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

  it('when thousands of leaves are appended at once, then the event loop gets turns meanwhile and the root is right', async () => {
    const log = await MerkleLog.open(new InMemoryNodeStore());
    const leaves = Array.from({ length: 5000 }, (_, i) => leafHash(new TextEncoder().encode(`entry ${i}`)));
    const loop = countTurns();
    // The in-memory store answers synchronously: any turn other work gets comes from the log.
    const result = await log.appendLeafHashes(leaves);
    const turnsDuringAppend = loop.turns;
    loop.stop();
    expect(turnsDuringAppend).toBeGreaterThan(0);
    expect(toHex(result.rootHash)).toBe(toHex(merkleTreeHash(leaves)));
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

describe('MerkleLog reading through memory', () => {
  const leavesOf = (n: number): Uint8Array[] =>
    Array.from({ length: n }, (_, i) => leafHash(Buffer.from(entry(i))));

  it('when a tiny cache keeps evicting, then every proof at every size is still the RFC proof', async () => {
    const store = new AsyncStore();
    const log = await MerkleLog.open(store, { cache: new NodeCache(5, 1) });
    const size = 70;
    await log.appendEntries(Array.from({ length: size }, (_, i) => entry(i)));
    const leaves = leavesOf(size);
    for (let n = 1; n <= size; n++) {
      for (const m of [0, n - 1, Math.floor(n / 2), Math.floor(n / 3)]) {
        const proof = await log.inclusionProof(m, n);
        expect(proof.map(toHex)).toEqual(referenceInclusionProof(m, leaves.slice(0, n)).map(toHex));
      }
      const consistency = await log.consistencyProof(Math.ceil(n / 2), n);
      expect(consistency.map(toHex)).toEqual(
        referenceConsistencyProof(Math.ceil(n / 2), leaves.slice(0, n)).map(toHex),
      );
      expect(toHex(await log.rootHashAt(n))).toBe(toHex(merkleTreeHash(leaves.slice(0, n))));
    }
  });

  it('when proofs are asked again against a past size, then memory answers the shared nodes', async () => {
    const store = new AsyncStore();
    const log = await MerkleLog.open(store, { cache: new NodeCache(1 << 14, 0) });
    await log.appendEntries(Array.from({ length: 5000 }, (_, i) => entry(i)));
    store.reads = 0;
    await log.inclusionProof(1234, 4321);
    expect(store.reads).toBe(1);
    // The past size's compact range came with that read; the current size's is the frontier.
    await log.rootHashAt(4321);
    await log.rootHashAt(5000);
    await log.inclusionProof(1234, 4321);
    await log.consistencyProof(4321, 5000);
    expect(store.reads).toBe(1);
  });

  it('when a proof is given to a caller who changes it, then later proofs are unaffected', async () => {
    const log = await MerkleLog.open(new InMemoryNodeStore(), { cache: new NodeCache(64, 0) });
    await log.appendEntries(Array.from({ length: 33 }, (_, i) => entry(i)));
    const first = await log.inclusionProof(3, 20);
    const expected = first.map(toHex);
    for (const hash of first) hash.fill(0);
    for (const hash of await log.inclusionProof(31)) hash.fill(0);
    expect((await log.inclusionProof(3, 20)).map(toHex)).toEqual(expected);
    expect(toHex(log.rootHash())).toBe(toHex(merkleTreeHash(leavesOf(33))));
  });

  it('when a write fails, then nodes of the failed append are never served from memory', async () => {
    const store = new AsyncStore();
    const log = await MerkleLog.open(store, { cache: new NodeCache(64, 0) });
    await log.appendEntries(Array.from({ length: 3 }, (_, i) => entry(i)));
    store.failWrites = true;
    await expect(log.appendEntries([entry(100)])).rejects.toThrow('disk full');
    store.failWrites = false;
    await log.appendEntries([entry(3), entry(4)]);
    const leaves = leavesOf(5);
    expect((await log.inclusionProof(0, 4)).map(toHex)).toEqual(
      referenceInclusionProof(0, leaves.slice(0, 4)).map(toHex),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { leafHash, toHex } from './hash.js';
import { InMemoryNodeStore } from './memory-node-store.js';
import { MerkleLog } from './merkle-log.js';
import { merkleTreeHash, referenceConsistencyProof, referenceInclusionProof } from './rfc9162.js';
import { createPrng, flipBit } from './testing/prng.js';
import { verifyConsistency, verifyInclusion } from './verify.js';

const SEED = 0x5eed_1ed9;
const MAX_SIZE = 300;

async function randomLog(
  seed: number,
): Promise<{ log: MerkleLog; entries: Uint8Array[]; leaves: Uint8Array[] }> {
  const prng = createPrng(seed);
  // Any bytes but a newline, which the log refuses so every entry stays one line of entries.jsonl.
  const entries = Array.from({ length: MAX_SIZE }, () =>
    prng.bytes(prng.int(40)).map((b) => (b === 0x0a ? 0 : b)),
  );
  const log = await MerkleLog.open(new InMemoryNodeStore());
  // Uneven batches exercise frontier carries across batch boundaries.
  for (let at = 0; at < entries.length; ) {
    const batch = entries.slice(at, at + 1 + prng.int(17));
    await log.appendEntries(batch);
    at += batch.length;
  }
  return { log, entries, leaves: entries.map(leafHash) };
}

describe('inclusion and consistency proofs over random trees', () => {
  it('when any leaf of any tree size up to 300 is proven, then the proof is the RFC path and verifies', async () => {
    const { log, leaves } = await randomLog(SEED);
    for (let size = 1; size <= MAX_SIZE; size++) {
      const root = merkleTreeHash(leaves.slice(0, size));
      expect(toHex(await log.rootHashAt(size))).toBe(toHex(root));
      const indexes = size <= 40 ? Array.from({ length: size }, (_, i) => i) : [0, size - 1, size >> 1, 17];
      for (const index of indexes) {
        const proof = await log.inclusionProof(index, size);
        expect(proof.map(toHex)).toEqual(referenceInclusionProof(index, leaves.slice(0, size)).map(toHex));
        expect(verifyInclusion(index, size, leaves[index] as Uint8Array, proof, root)).toBe(true);
      }
    }
  });

  it('when any pair of sizes is proven consistent, then the proof is the RFC proof and verifies', async () => {
    const { log, leaves } = await randomLog(SEED + 1);
    const prng = createPrng(SEED + 2);
    for (let trial = 0; trial < 1500; trial++) {
      const size2 = 1 + prng.int(MAX_SIZE);
      const size1 = trial < 300 ? Math.min(size2, trial) : prng.int(size2 + 1);
      const proof = await log.consistencyProof(size1, size2);
      expect(proof.map(toHex)).toEqual(referenceConsistencyProof(size1, leaves.slice(0, size2)).map(toHex));
      const root1 = merkleTreeHash(leaves.slice(0, size1));
      const root2 = merkleTreeHash(leaves.slice(0, size2));
      expect(verifyConsistency(size1, size2, proof, root1, root2)).toBe(true);
    }
  });

  it('when a byte of the entry, the proof or the root is flipped, then inclusion is rejected', async () => {
    const { log, entries, leaves } = await randomLog(SEED + 3);
    const prng = createPrng(SEED + 4);
    for (let trial = 0; trial < 400; trial++) {
      const size = 2 + prng.int(MAX_SIZE - 1);
      const index = prng.int(size);
      const root = await log.rootHashAt(size);
      const proof = await log.inclusionProof(index, size);
      const entry = entries[index] as Uint8Array;
      const leaf = leaves[index] as Uint8Array;

      const tamperedEntry =
        entry.length > 0 ? flipBit(entry, prng.int(entry.length), prng.int(8)) : Uint8Array.of(0);
      expect(verifyInclusion(index, size, leafHash(tamperedEntry), proof, root)).toBe(false);
      expect(verifyInclusion(index, size, flipBit(leaf, prng.int(32), prng.int(8)), proof, root)).toBe(false);
      expect(verifyInclusion(index, size, leaf, proof, flipBit(root, prng.int(32), prng.int(8)))).toBe(false);
      if (proof.length > 0) {
        const at = prng.int(proof.length);
        const tampered = proof.map((p, i) => (i === at ? flipBit(p, prng.int(32), prng.int(8)) : p));
        expect(verifyInclusion(index, size, leaf, tampered, root)).toBe(false);
        expect(verifyInclusion(index, size, leaf, proof.slice(0, -1), root)).toBe(false);
      }
      expect(verifyInclusion(index, size, leaf, [...proof, root], root)).toBe(false);
      expect(verifyInclusion(index, size, leaf, [root, ...proof], root)).toBe(false);
      if (index > 0) expect(verifyInclusion(index - 1, size, leaf, proof, root)).toBe(false);
      if (index + 1 < size) expect(verifyInclusion(index + 1, size, leaf, proof, root)).toBe(false);
      expect(verifyInclusion(index, size * 2, leaf, proof, root)).toBe(false);
      expect(verifyInclusion(index, size, leaf, proof, root)).toBe(true);
    }
  });

  it('when a byte of the proof or either root is flipped, then consistency is rejected', async () => {
    const { log } = await randomLog(SEED + 5);
    const prng = createPrng(SEED + 6);
    for (let trial = 0; trial < 400; trial++) {
      const size2 = 2 + prng.int(MAX_SIZE - 1);
      const size1 = 1 + prng.int(size2 - 1);
      const root1 = await log.rootHashAt(size1);
      const root2 = await log.rootHashAt(size2);
      const proof = await log.consistencyProof(size1, size2);
      const at = prng.int(proof.length);
      const tampered = proof.map((p, i) => (i === at ? flipBit(p, prng.int(32), prng.int(8)) : p));
      expect(verifyConsistency(size1, size2, tampered, root1, root2)).toBe(false);
      expect(verifyConsistency(size1, size2, proof, flipBit(root1, prng.int(32), prng.int(8)), root2)).toBe(
        false,
      );
      expect(verifyConsistency(size1, size2, proof, root1, flipBit(root2, prng.int(32), prng.int(8)))).toBe(
        false,
      );
      expect(verifyConsistency(size1, size2, proof.slice(0, -1), root1, root2)).toBe(false);
      expect(verifyConsistency(size1, size2, [...proof, root2], root1, root2)).toBe(false);
      expect(verifyConsistency(size1, size2, [proof[0] as Uint8Array, ...proof], root1, root2)).toBe(false);
      expect(verifyConsistency(size1, size2, [], root1, root2)).toBe(false);
      expect(verifyConsistency(size1, size2, proof, root2, root1)).toBe(false);
      expect(verifyConsistency(size1, size2 * 2, proof, root1, root2)).toBe(false);
      expect(verifyConsistency(size1, size2, proof, root1, root2)).toBe(true);
    }
  });

  it('when sizes are degenerate, then only the trivially true cases verify', async () => {
    const { log } = await randomLog(SEED + 7);
    const root5 = await log.rootHashAt(5);
    const root0 = await log.rootHashAt(0);
    expect(verifyConsistency(0, 5, [], root0, root5)).toBe(true);
    expect(verifyConsistency(0, 5, [], root5, root5)).toBe(false);
    expect(verifyConsistency(5, 5, [], root5, root5)).toBe(true);
    expect(verifyConsistency(5, 5, [root5], root5, root5)).toBe(false);
    expect(verifyConsistency(6, 5, [], root5, root5)).toBe(false);
    expect(verifyInclusion(0, 0, root5, [], root5)).toBe(false);
    await expect(log.inclusionProof(5, 5)).rejects.toThrow(/not in a tree of size 5/);
    await expect(log.consistencyProof(6, 5)).rejects.toThrow(/larger than new size/);
    await expect(log.inclusionProof(0, MAX_SIZE + 1)).rejects.toThrow(/beyond the log's size/);
  });
});

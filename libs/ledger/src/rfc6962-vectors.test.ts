import { describe, expect, it } from 'vitest';
import { EMPTY_ROOT_HASH, leafHash, toHex } from './hash.js';
import { InMemoryNodeStore } from './memory-node-store.js';
import { MerkleLog } from './merkle-log.js';
import { merkleTreeHash, referenceConsistencyProof, referenceInclusionProof } from './rfc9162.js';
import { hex } from './testing/prng.js';
import {
  CONSISTENCY_PROOFS,
  EMPTY_ROOT,
  INCLUSION_PROOFS,
  LEAF_INPUTS,
  NODE_HASHES,
  ROOTS,
} from './testing/rfc6962-vectors.js';
import { verifyConsistency, verifyInclusion } from './verify.js';

const leafHashes = LEAF_INPUTS.map(leafHash);
const hexes = (hashes: readonly Uint8Array[]): string[] => hashes.map(toHex);

async function logOf(size: number): Promise<MerkleLog> {
  const log = await MerkleLog.open(new InMemoryNodeStore());
  await log.appendEntries(LEAF_INPUTS.slice(0, size));
  return log;
}

describe('RFC 6962 published test vectors', () => {
  it('when the tree is empty, then its root is SHA-256 of the empty string', async () => {
    expect(toHex(EMPTY_ROOT_HASH)).toBe(EMPTY_ROOT);
    expect(toHex(merkleTreeHash([]))).toBe(EMPTY_ROOT);
    expect(toHex((await logOf(0)).rootHash())).toBe(EMPTY_ROOT);
  });

  it('when the leaf is the empty entry, then its hash is 6e340b9c…', () => {
    expect(toHex(leafHash(new Uint8Array(0)))).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
  });

  it('when the 8 corpus leaves are hashed, then every complete subtree matches the table', async () => {
    const log = await logOf(8);
    for (const [level, row] of NODE_HASHES.entries()) {
      for (const [index, expected] of row.entries()) {
        const start = index * 2 ** level;
        expect(toHex(merkleTreeHash(leafHashes.slice(start, start + 2 ** level)))).toBe(expected);
      }
    }
    expect(toHex(log.rootHash())).toBe(NODE_HASHES[3]?.[0]);
  });

  it('when the tree grows from 1 to 8 leaves, then each root matches the published roots', async () => {
    const log = await MerkleLog.open(new InMemoryNodeStore());
    for (let size = 1; size <= 8; size++) {
      await log.appendEntries([LEAF_INPUTS[size - 1] as Uint8Array]);
      expect(toHex(log.rootHash())).toBe(ROOTS[size - 1]);
      expect(toHex(merkleTreeHash(leafHashes.slice(0, size)))).toBe(ROOTS[size - 1]);
    }
    for (let size = 1; size <= 8; size++) expect(toHex(await log.rootHashAt(size))).toBe(ROOTS[size - 1]);
  });

  it('when inclusion proofs are generated, then they equal the published audit paths and verify', async () => {
    for (const vector of INCLUSION_PROOFS) {
      const index = vector.leaf - 1;
      const log = await logOf(vector.size);
      const fromLog = await log.inclusionProof(index);
      expect(hexes(fromLog)).toEqual(vector.proof);
      expect(hexes(referenceInclusionProof(index, leafHashes.slice(0, vector.size)))).toEqual(vector.proof);
      const root = hex(ROOTS[vector.size - 1] as string);
      expect(verifyInclusion(index, vector.size, leafHashes[index] as Uint8Array, fromLog, root)).toBe(true);
      expect(
        verifyInclusion(index, vector.size, leafHashes[index] as Uint8Array, fromLog.slice(1), root),
      ).toBe(false);
    }
  });

  it('when consistency proofs are generated, then they equal the published proofs and verify', async () => {
    const log = await logOf(8);
    for (const vector of CONSISTENCY_PROOFS) {
      const fromLog = await log.consistencyProof(vector.size1, vector.size2);
      expect(hexes(fromLog)).toEqual(vector.proof);
      expect(hexes(referenceConsistencyProof(vector.size1, leafHashes.slice(0, vector.size2)))).toEqual(
        vector.proof,
      );
      const root1 = hex(ROOTS[vector.size1 - 1] as string);
      const root2 = hex(ROOTS[vector.size2 - 1] as string);
      expect(verifyConsistency(vector.size1, vector.size2, fromLog, root1, root2)).toBe(true);
      if (vector.size1 !== vector.size2) {
        expect(verifyConsistency(vector.size1, vector.size2, fromLog, root2, root1)).toBe(false);
      }
    }
  });
});

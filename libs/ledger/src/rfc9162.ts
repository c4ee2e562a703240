import { bitLength } from './bits.js';
import { EMPTY_ROOT_HASH, nodeHash } from './hash.js';

// Direct transcriptions of the recursive definitions in RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1
// over an in-memory list of leaf hashes. They are O(n) per call and serve as the executable
// specification that the scalable, store-backed algorithms are tested against.

type Leaves = readonly Uint8Array[];

/** Largest power of two strictly smaller than n (n > 1). */
function splitPoint(n: number): number {
  return 2 ** (bitLength(n - 1) - 1);
}

/** MTH(D[n]) for the leaves' hashes. */
export function merkleTreeHash(leaves: Leaves): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT_HASH;
  if (leaves.length === 1) return leaves[0] as Uint8Array;
  const k = splitPoint(leaves.length);
  return nodeHash(merkleTreeHash(leaves.slice(0, k)), merkleTreeHash(leaves.slice(k)));
}

/** PATH(m, D[n]): the audit path of leaf m. */
export function referenceInclusionProof(m: number, leaves: Leaves): Uint8Array[] {
  const n = leaves.length;
  if (m < 0 || m >= n) throw new RangeError(`leaf ${m} is outside a tree of ${n}`);
  if (n === 1) return [];
  const k = splitPoint(n);
  if (m < k) return [...referenceInclusionProof(m, leaves.slice(0, k)), merkleTreeHash(leaves.slice(k))];
  return [...referenceInclusionProof(m - k, leaves.slice(k)), merkleTreeHash(leaves.slice(0, k))];
}

/** PROOF(m, D[n]): the consistency proof from the first m leaves to all n. */
export function referenceConsistencyProof(m: number, leaves: Leaves): Uint8Array[] {
  if (m < 0 || m > leaves.length) throw new RangeError(`size ${m} is outside a tree of ${leaves.length}`);
  if (m === 0) return [];
  return subproof(m, leaves, true);
}

function subproof(m: number, leaves: Leaves, complete: boolean): Uint8Array[] {
  const n = leaves.length;
  if (m === n) return complete ? [] : [merkleTreeHash(leaves)];
  const k = splitPoint(n);
  if (m <= k) return [...subproof(m, leaves.slice(0, k), complete), merkleTreeHash(leaves.slice(k))];
  return [...subproof(m - k, leaves.slice(k), false), merkleTreeHash(leaves.slice(0, k))];
}

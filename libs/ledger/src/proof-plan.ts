import { bitLength, isTreeSize, shiftLeft, shiftRight, trailingZeros, xor } from './bits.js';
import { LedgerError } from './errors.js';
import { EMPTY_ROOT_HASH, nodeHash } from './hash.js';
import { coverageEnd, type NodeId, parent, rangeNodes, sibling } from './node-id.js';

/**
 * Which stored node hashes make up a proof, so a store can fetch them in one batched read.
 * Proof element j is the hash of `ids[j]`, except that `ids[ephemeralBegin..ephemeralEnd)` are
 * folded (right to left) into a single element: the right border of a tree whose size is not a
 * power of two is an incomplete subtree that is never stored, only derived from complete ones.
 */
export interface ProofPlan {
  readonly ids: readonly NodeId[];
  readonly ephemeralBegin: number;
  readonly ephemeralEnd: number;
}

const EMPTY_PLAN: ProofPlan = { ids: [], ephemeralBegin: 0, ephemeralEnd: 0 };

/**
 * The path from the complete node (level, index) up to the root of a tree of `size` leaves: the
 * node itself first, then one sibling per level. It is the RFC 9162 audit path generalised to an
 * interior start node, which also yields consistency proofs (§2.1.4 proves the subtree ending at
 * the old size is included in the new tree).
 */
function pathPlan(start: NodeId, size: number): ProofPlan {
  // Above `fork` the start node's ancestors are incomplete; the fork's right sibling is the
  // ephemeral node covering [forkEnd, size), and above it only left siblings remain, which are
  // exactly the compact range [0, forkBegin).
  const inner = bitLength(xor(start.index, shiftRight(size, start.level))) - 1;
  const forkLevel = start.level + inner;
  const fork: NodeId = { level: forkLevel, index: shiftRight(start.index, inner) };

  const ids: NodeId[] = [start];
  for (let node = start; node.level < forkLevel; node = parent(node)) ids.push(sibling(node));
  const ephemeralBegin = ids.length;
  ids.push(...rangeNodes(coverageEnd(fork), size));
  const ephemeralEnd = ids.length;
  ids.push(...rangeNodes(0, shiftLeft(fork.index, forkLevel)).reverse());
  return { ids, ephemeralBegin, ephemeralEnd };
}

function withoutFirst(plan: ProofPlan): ProofPlan {
  return {
    ids: plan.ids.slice(1),
    ephemeralBegin: plan.ephemeralBegin - 1,
    ephemeralEnd: plan.ephemeralEnd - 1,
  };
}

function requireSize(size: number, name: string): void {
  if (!isTreeSize(size)) throw new LedgerError('invalid_argument', `${name} must be a safe integer ≥ 0`);
}

/** Nodes of the inclusion proof (audit path) of leaf `index` in a tree of `size` leaves. */
export function inclusionPlan(index: number, size: number): ProofPlan {
  requireSize(index, 'leaf index');
  requireSize(size, 'tree size');
  if (index >= size) {
    throw new LedgerError('invalid_argument', `leaf index ${index} is not in a tree of size ${size}`);
  }
  return withoutFirst(pathPlan({ level: 0, index }, size));
}

/** Nodes of the consistency proof from a tree of `size1` leaves to one of `size2`. */
export function consistencyPlan(size1: number, size2: number): ProofPlan {
  requireSize(size1, 'old tree size');
  requireSize(size2, 'new tree size');
  if (size1 > size2) {
    throw new LedgerError('invalid_argument', `old tree size ${size1} is larger than new size ${size2}`);
  }
  if (size1 === 0 || size1 === size2) return EMPTY_PLAN;
  // The largest complete subtree ending at size1; when size1 is a power of two it is the old root,
  // which the verifier already holds, so RFC 9162 leaves it out.
  const level = trailingZeros(size1);
  const start: NodeId = { level, index: shiftRight(size1 - 1, level) };
  const plan = pathPlan(start, size2);
  return start.index === 0 ? withoutFirst(plan) : plan;
}

/** Nodes whose fold is the root of a tree of `size` leaves (its compact range). */
export function rootPlan(size: number): readonly NodeId[] {
  requireSize(size, 'tree size');
  return rangeNodes(0, size);
}

/** Folds hashes right to left, the RFC 9162 shape of an incomplete right border. */
export function foldRight(hashes: readonly Uint8Array[], from = 0, to = hashes.length): Uint8Array {
  if (to <= from) return EMPTY_ROOT_HASH;
  let acc = hashes[to - 1] as Uint8Array;
  for (let j = to - 2; j >= from; j--) acc = nodeHash(hashes[j] as Uint8Array, acc);
  return acc;
}

/** Turns the hashes read for a plan's ids into the proof. */
export function assembleProof(plan: ProofPlan, hashes: readonly Uint8Array[]): Uint8Array[] {
  if (hashes.length !== plan.ids.length) {
    throw new LedgerError('storage', `expected ${plan.ids.length} node hashes, got ${hashes.length}`);
  }
  const proof = hashes.slice(0, plan.ephemeralBegin);
  if (plan.ephemeralEnd > plan.ephemeralBegin) {
    proof.push(foldRight(hashes, plan.ephemeralBegin, plan.ephemeralEnd));
  }
  proof.push(...hashes.slice(plan.ephemeralEnd));
  return proof;
}

import { firstDifference, type TamperKind } from './bundle-diagnose.js';
import { type BundleProofs, type EarlierCheckpoint, prunedLeafHash } from './bundle-format.js';
import { type Checkpoint, openCheckpoint } from './checkpoint.js';
import { Frontier } from './frontier.js';
import { hashesEqual, leafHash } from './hash.js';
import { HashList } from './hash-list.js';
import type { VerifierKey } from './keys.js';
import { verifyConsistency, verifyInclusion } from './verify.js';

// Offline verification of an evidence bundle (BUNDLE-FORMAT.md §4–§5). Pure: the caller reads the
// files; entries may be streamed line by line, memory stays at 32 bytes per entry.

export interface BundleInput {
  /** The lines of entries.jsonl without their newline (see splitEntryLines). */
  readonly entries: Iterable<Uint8Array | string>;
  /** The `checkpoint` file: a signed C2SP checkpoint. */
  readonly checkpoint: string | Uint8Array;
  /** Keys the auditor trusts, obtained independently of the bundle; retired keys included. */
  readonly keys: readonly VerifierKey[];
  /** proofs.json, parsed. Without it the tree is still checked, but a failure cannot be located. */
  readonly proofs?: BundleProofs | undefined;
  /** When given, the checkpoint must be for this log. */
  readonly expectedOrigin?: string | undefined;
}

export type BundleProblemCode =
  | 'checkpoint'
  | 'proofs'
  | 'leaf-hashes'
  | 'earlier-checkpoint'
  | 'inclusion-proof'
  | 'entries';

export interface BundleProblem {
  readonly code: BundleProblemCode;
  readonly message: string;
  readonly index?: number;
}

export interface FirstBadEntry {
  /** Exact index when `exact`; otherwise every entry before it is proven and the fault is at or after it. */
  readonly index: number;
  readonly kind: TamperKind | 'unknown';
  readonly exact: boolean;
  /** When not exact and known: the fault is before this index. */
  readonly before?: number;
  readonly count?: number;
  readonly message: string;
}

export interface BundleReport {
  readonly ok: boolean;
  readonly checkpoint?: Checkpoint;
  /** Verifier keys (vkey text) whose signature on the checkpoint verified. */
  readonly signedBy: readonly string[];
  readonly entryCount: number;
  readonly prunedCount: number;
  readonly firstBad?: FirstBadEntry;
  readonly problems: readonly BundleProblem[];
  /** One line for a person: what was verified, or the first thing wrong. */
  readonly summary: string;
}

interface Anchor {
  readonly size: number;
  readonly root: Uint8Array;
  matched?: boolean;
}

export function verifyBundle(input: BundleInput): BundleReport {
  const problems: BundleProblem[] = [];
  let opened: ReturnType<typeof openCheckpoint>;
  try {
    opened = openCheckpoint(input.checkpoint, input.keys, input.expectedOrigin);
  } catch (error) {
    const message = `checkpoint: ${(error as Error).message}`;
    return {
      ok: false,
      signedBy: [],
      entryCount: 0,
      prunedCount: 0,
      problems: [{ code: 'checkpoint', message }],
      summary: `FAILED: ${message}`,
    };
  }
  const { checkpoint } = opened;
  const size = checkpoint.size;
  const root = checkpoint.rootHash;

  let proofs = input.proofs;
  if (proofs !== undefined && proofs.treeSize !== size) {
    problems.push({
      code: 'proofs',
      message: `proofs.json is for a tree of ${proofs.treeSize} entries, the checkpoint for ${size}; its proofs are ignored`,
    });
    proofs = undefined;
  }

  // Signed earlier checkpoints proven consistent with this one: each prefix they cover is a
  // second, independent reference point for locating damage.
  const anchors: Anchor[] = [
    ...verifiedEarlierCheckpoints(proofs?.checkpoints ?? [], input.keys, checkpoint, problems),
    { size, root },
  ].sort((a, b) => a.size - b.size);

  const actual = new HashList(Math.min(size + 1, 1 << 20));
  const frontier = Frontier.empty();
  let prunedCount = 0;
  let next = 0;
  while (anchors[next]?.size === 0) next++;
  for (const line of input.entries) {
    const bytes = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
    const declared = prunedLeafHash(bytes);
    if (declared !== undefined) prunedCount++;
    const hash = declared ?? leafHash(bytes);
    actual.push(hash);
    frontier.push(hash);
    for (let anchor = anchors[next]; anchor?.size === frontier.size; anchor = anchors[++next]) {
      anchor.matched = hashesEqual(frontier.root(), anchor.root);
    }
  }

  const count = actual.length;
  const entriesMatch = count === size && hashesEqual(frontier.root(), root);
  const reference = proofs?.leafHashes === undefined ? undefined : HashList.wrap(proofs.leafHashes);
  const failedInclusion = checkInclusionProofs(proofs, actual, root, problems);

  let firstBad: FirstBadEntry | undefined;
  if (entriesMatch) {
    if (reference !== undefined && !reference.equals(actual)) {
      problems.push({
        code: 'leaf-hashes',
        message:
          'proofs.json leafHashes differ from the entries, which match the signed root: proofs.json was altered',
      });
    }
  } else if (reference !== undefined && hashesEqual(rootOf(reference), root)) {
    const difference = firstDifference(reference, actual);
    if (difference !== undefined) firstBad = { ...difference, exact: true };
  } else {
    if (reference !== undefined) {
      problems.push({
        code: 'leaf-hashes',
        message: 'proofs.json leafHashes do not hash to the signed root, so they cannot locate the damage',
      });
    }
    firstBad = bracket(anchors, count, size, failedInclusion);
  }
  if (firstBad !== undefined)
    problems.unshift({ code: 'entries', message: firstBad.message, index: firstBad.index });

  const ok = problems.length === 0;
  const signedBy = opened.verifiedBy.map((k) => k.text);
  const summary = ok
    ? `OK: ${count} entries (${prunedCount} pruned) match checkpoint ${checkpoint.origin} at size ${size}, signed by ${opened.verifiedBy.map((k) => k.name).join(', ')}`
    : `FAILED: ${problems[0]?.message}`;
  return { ok, checkpoint, signedBy, entryCount: count, prunedCount, firstBad, problems, summary };
}

function verifiedEarlierCheckpoints(
  earlier: readonly EarlierCheckpoint[],
  keys: readonly VerifierKey[],
  final: Checkpoint,
  problems: BundleProblem[],
): Anchor[] {
  const anchors: Anchor[] = [];
  for (const [i, item] of earlier.entries()) {
    let checkpoint: Checkpoint;
    try {
      checkpoint = openCheckpoint(item.checkpoint, keys, final.origin).checkpoint;
    } catch (error) {
      problems.push({
        code: 'earlier-checkpoint',
        message: `checkpoints[${i}]: ${(error as Error).message}`,
      });
      continue;
    }
    if (
      checkpoint.size > final.size ||
      !verifyConsistency(checkpoint.size, final.size, item.consistency, checkpoint.rootHash, final.rootHash)
    ) {
      problems.push({
        code: 'earlier-checkpoint',
        message: `checkpoints[${i}] (size ${checkpoint.size}) is not consistent with the checkpoint of size ${final.size}: the log was rewritten or the proof altered`,
      });
      continue;
    }
    anchors.push({ size: checkpoint.size, root: checkpoint.rootHash });
  }
  return anchors;
}

/** Verifies each inclusion proof; returns the smallest index whose entry fails its proof. */
function checkInclusionProofs(
  proofs: BundleProofs | undefined,
  actual: HashList,
  root: Uint8Array,
  problems: BundleProblem[],
): number | undefined {
  let first: number | undefined;
  for (const { index, proof } of proofs?.inclusion ?? []) {
    if (index >= (proofs?.treeSize ?? 0)) {
      problems.push({
        code: 'proofs',
        message: `an inclusion proof names entry ${index}, beyond the tree`,
        index,
      });
      continue;
    }
    if (index < actual.length && verifyInclusion(index, proofs?.treeSize ?? 0, actual.at(index), proof, root))
      continue;
    problems.push({
      code: 'inclusion-proof',
      message: `entry ${index} does not match its inclusion proof (the entry or the proof was altered)`,
      index,
    });
    first = first === undefined ? index : Math.min(first, index);
  }
  return first;
}

function rootOf(hashes: HashList): Uint8Array {
  const frontier = Frontier.empty();
  for (let i = 0; i < hashes.length; i++) frontier.push(hashes.at(i));
  return frontier.root();
}

/**
 * Without authenticated leaf hashes, the best statement is a range: every prefix a signed
 * checkpoint matched is proven, so the first bad entry is after the last matched one and before
 * the first mismatch (a checkpoint prefix or an inclusion proof that failed).
 */
function bracket(
  anchors: readonly Anchor[],
  count: number,
  size: number,
  failedInclusion?: number,
): FirstBadEntry {
  const proven = anchors.filter((a) => a.matched === true).reduce((max, a) => Math.max(max, a.size), 0);
  const limits = anchors.filter((a) => a.matched === false).map((a) => a.size);
  if (failedInclusion !== undefined) limits.push(failedInclusion + 1);
  const before = limits.length > 0 ? Math.min(...limits) : undefined;
  if (count < size && proven === count) {
    return {
      index: count,
      kind: 'truncated',
      exact: true,
      count: size - count,
      message: `the bundle ends after ${count} entries but the checkpoint covers ${size}: entries ${count}..${size - 1} are missing`,
    };
  }
  if (count > size && proven === size) {
    return {
      index: size,
      kind: 'inserted',
      exact: true,
      count: count - size,
      message: `${count - size} line(s) after entry ${size - 1} are not covered by the signed checkpoint of size ${size}`,
    };
  }
  const lines =
    count === size
      ? ''
      : ` (the bundle has ${count} lines for ${size} logged entries: entries were ${count < size ? 'deleted or truncated' : 'inserted'})`;
  const range = before === undefined ? `at or after entry ${proven}` : `in entries ${proven}..${before - 1}`;
  return {
    index: proven,
    kind: 'unknown',
    exact: false,
    ...(before === undefined ? {} : { before }),
    message: `the entries do not hash to the signed root; the first bad entry is ${range}${lines}; a bundle with leafHashes names it exactly`,
  };
}

import {
  type FirstBadEntry,
  Frontier,
  firstDifference,
  HashList,
  hashesEqual,
  leafHash,
  openCheckpoint,
  parseVerifierKey,
  prunedLeafHash,
  toBase64,
  type VerifierKey,
} from '@flowloom/ledger';
import { HASH_BYTES, nodesBefore } from '../domain/tiles.js';
import type { AuditSource } from '../ports/audit-source.js';
import type { BundlePage, NodeTile } from '../ports/ledger-store.js';

export interface VerifyProgress {
  readonly phase: 'checkpoints' | 'tree' | 'entries';
  readonly done: number;
  readonly total: number;
}

export interface VerifyLogOptions {
  /** Verifier keys the auditor trusts (vkey text). Without them the log's own keys are used. */
  readonly trustedKeys?: readonly string[] | undefined;
  /** Checkpoints kept outside the database (audit.checkpointDir files, a witness). */
  readonly externalCheckpoints?: ReadonlyArray<{ name: string; note: string }> | undefined;
  readonly pageSize?: number;
  readonly onProgress?: (progress: VerifyProgress) => void;
  /**
   * Leaf hashes of a page of bundle lines, packed (a pruned marker gives the hash it declares).
   * Give one that runs on another thread to hash a page while the next one is read.
   */
  readonly hashLines?: (lines: readonly string[]) => Promise<Uint8Array>;
  /**
   * Recomputes the tree from the node store's tiles and checks every stored node and the roots at
   * the anchor sizes. Give one that runs on another thread to do it while entries are read.
   */
  readonly treeChecker?: TreeCheckerFactory;
}

export interface TreeCheckResult {
  /** The node store's leaf hashes, packed, as fed (up to the first gap). */
  readonly leaves: Uint8Array;
  /** Per anchor (in the order given): whether the recomputed root at its size matched. */
  readonly matches: ReadonlyArray<boolean | undefined>;
  /** The first thing wrong with the node store, if any. */
  readonly problem?: string | undefined;
}

export interface TreeChecker {
  /** Feeds the next tile (tiles must follow each other: a gap is reported and ends the check). */
  push(tile: NodeTile): void;
  finish(): Promise<TreeCheckResult>;
}

export type TreeCheckerFactory = (anchors: ReadonlyArray<{ size: number; root: Uint8Array }>) => TreeChecker;

/** The tree check on this thread. */
export const checkTreeHere: TreeCheckerFactory = (anchors) => {
  const committed = new HashList(1 << 16);
  const matches: Array<boolean | undefined> = anchors.map(() => undefined);
  const tree = new PrefixChecker(
    anchors.map((a, i) => ({ size: a.size, root: a.root, i })),
    (a, ok) => {
      matches[a.i] = ok;
    },
  );
  let problem: string | undefined;
  return {
    push(tile) {
      if (problem !== undefined && /gap|overlap/.test(problem)) return;
      if (tile.endSize <= committed.length) return;
      if (tile.startSize !== committed.length) {
        problem ??= `the node store has a gap or overlap at leaf ${committed.length} (a tile starts at ${tile.startSize})`;
        return;
      }
      pushTile(tile, committed, tree, (message) => {
        problem ??= message;
      });
    },
    async finish() {
      return { leaves: committed.packed(), matches, problem };
    },
  };
};

/** In-thread leaf hashing of bundle lines. */
export async function hashLinesHere(lines: readonly string[]): Promise<Uint8Array> {
  const out = new Uint8Array(lines.length * HASH_BYTES);
  lines.forEach((line, i) => {
    const bytes = Buffer.from(line, 'utf8');
    out.set(prunedLeafHash(bytes) ?? leafHash(bytes), i * HASH_BYTES);
  });
  return out;
}

export type LogProblemCode =
  | 'keys'
  | 'checkpoint'
  | 'external-checkpoint'
  | 'entries'
  | 'rows'
  | 'leaf-hash-column'
  | 'node-store';

export interface LogProblem {
  readonly code: LogProblemCode;
  readonly message: string;
  readonly index?: number;
}

export interface LogReport {
  readonly ok: boolean;
  readonly origin: string;
  /** Entries the node store commits to. */
  readonly treeSize: number;
  /** Rows read from the entries table. */
  readonly entryCount: number;
  readonly prunedCount: number;
  readonly checkpointsVerified: number;
  readonly checkpointsTotal: number;
  readonly externalVerified: number;
  readonly latestCheckpoint?: { readonly size: number; readonly rootHash: string } | undefined;
  /** Entries after the latest signed checkpoint: checked against the node store only. */
  readonly unsignedEntries: number;
  /** `pinned`: checked against keys the auditor supplied; `log`: against the log's own keys. */
  readonly keys: 'pinned' | 'log';
  readonly firstBad?: FirstBadEntry | undefined;
  readonly problems: readonly LogProblem[];
  readonly summary: string;
}

interface Anchor {
  readonly size: number;
  readonly root: Uint8Array;
  readonly label: string;
  matchedByEntries?: boolean;
  matchedByTree?: boolean;
  matchedByColumn?: boolean;
}

/** Streams leaves into a frontier and records, at each anchor size, whether the prefix root matches. */
class PrefixChecker<T extends { readonly size: number; readonly root: Uint8Array }> {
  private readonly frontier = Frontier.empty();
  private next = 0;

  constructor(
    private readonly anchors: readonly T[],
    private readonly mark: (anchor: T, matched: boolean) => void,
  ) {
    this.settle();
  }

  push(hash: Uint8Array, sink?: (level: number, index: number, hash: Uint8Array) => void): void {
    this.frontier.push(hash, sink);
    this.settle();
  }

  private settle(): void {
    for (let anchor = this.anchors[this.next]; anchor !== undefined; anchor = this.anchors[this.next]) {
      if (anchor.size > this.frontier.size) return;
      if (anchor.size === this.frontier.size)
        this.mark(anchor, hashesEqual(this.frontier.root(), anchor.root));
      this.next++;
    }
  }
}

/**
 * Verifies a whole ledger end to end without trusting its store: every checkpoint's signature;
 * the tree recomputed from the entries, which must reproduce every checkpoint's root (so all
 * checkpoints are consistent with each other and with the entries); the node store that serves
 * proofs; and the row sequence. On any difference it names the first bad entry, exactly when the
 * node store's leaf hashes are still authentic (they match the signed roots), else as a range
 * between checkpoints.
 */
export async function verifyLog(source: AuditSource, options: VerifyLogOptions = {}): Promise<LogReport> {
  const pageSize = options.pageSize ?? 10_000;
  const progress = options.onProgress ?? (() => {});
  const problems: LogProblem[] = [];
  const origin = await source.origin();

  let keys: VerifierKey[];
  const pinned = options.trustedKeys !== undefined && options.trustedKeys.length > 0;
  try {
    keys = (pinned ? [...(options.trustedKeys ?? [])] : await source.verifierKeys()).map((k) =>
      parseVerifierKey(k),
    );
  } catch (error) {
    return failed(origin, pinned, { code: 'keys', message: `verifier keys: ${(error as Error).message}` });
  }

  // 1. Checkpoints: signatures, and one root per size (two signed roots for one size = a fork).
  const bySize = new Map<number, Anchor>();
  let checkpointsTotal = 0;
  let checkpointsVerified = 0;
  const addAnchor = (size: number, root: Uint8Array, label: string, code: LogProblemCode): boolean => {
    const known = bySize.get(size);
    if (known && !hashesEqual(known.root, root)) {
      problems.push({
        code,
        message: `${label} and ${known.label} are both validly signed for size ${size} but disagree on the root: the log was forked or rewritten`,
      });
      return false;
    }
    if (!known) bySize.set(size, { size, root, label });
    return true;
  };
  for (let after = 0; ; ) {
    const page = await source.checkpoints(after, 1_000);
    if (page.length === 0) break;
    for (const record of page) {
      checkpointsTotal++;
      const label = `checkpoint #${record.id} (size ${record.treeSize})`;
      try {
        const { checkpoint } = openCheckpoint(record.note, keys, origin);
        if (checkpoint.size !== record.treeSize || !hashesEqual(checkpoint.rootHash, record.rootHash)) {
          problems.push({
            code: 'checkpoint',
            message: `${label}: the stored size or root differs from the signed note (the row was altered)`,
          });
        }
        if (addAnchor(checkpoint.size, checkpoint.rootHash, label, 'checkpoint')) checkpointsVerified++;
      } catch (error) {
        problems.push({ code: 'checkpoint', message: `${label}: ${(error as Error).message}` });
      }
    }
    after = (page[page.length - 1] as { id: number }).id;
    progress({ phase: 'checkpoints', done: checkpointsTotal, total: checkpointsTotal });
  }
  let externalVerified = 0;
  for (const external of options.externalCheckpoints ?? []) {
    const label = `external checkpoint ${external.name}`;
    try {
      const { checkpoint } = openCheckpoint(external.note, keys, origin);
      if (addAnchor(checkpoint.size, checkpoint.rootHash, label, 'external-checkpoint')) externalVerified++;
    } catch (error) {
      problems.push({ code: 'external-checkpoint', message: `${label}: ${(error as Error).message}` });
    }
  }
  const anchors = [...bySize.values()].sort((a, b) => a.size - b.size);
  const latest = anchors[anchors.length - 1];

  // 2. The node store (tiles: what the log committed, independent of the entries table) and
  // 3. the entries, in row order, read page by page. The tree is recomputed from the tiles and
  //    every stored node checked; each entry's leaf hash is recomputed from the entry itself. Both
  //    can run on another thread while the next page is read.
  const treeSize = await source.treeSize();
  const checker = (options.treeChecker ?? checkTreeHere)(anchors);
  let fedTo = 0;
  const feedTiles = async (start: number, end: number): Promise<void> => {
    for (const tile of await source.tiles(start, end)) {
      if (tile.endSize <= fedTo) continue;
      checker.push(tile);
      fedTo = tile.endSize;
    }
  };
  const actual = new HashList(Math.min(treeSize + 1, 1 << 20));
  const column = new HashList(Math.min(treeSize + 1, 1 << 20));
  let prunedCount = 0;
  let columnMismatch: number | undefined;
  let rowAnomaly: LogProblem | undefined;
  const hashLines = options.hashLines ?? hashLinesHere;
  const consume = (page: BundlePage, hashes: Uint8Array): number => {
    const base = actual.length;
    // The stored leaf_hash column is compared a page at a time; line by line only to name the
    // first entry where it differs.
    const columnAgrees = Buffer.compare(hashes, page.leafHashes) === 0;
    page.lines.forEach((line, i) => {
      const position = base + i;
      if (isMarker(line)) prunedCount++;
      else if (!columnAgrees && columnMismatch === undefined) {
        const hash = hashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
        const stored = page.leafHashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
        if (!hashesEqual(hash, stored)) columnMismatch = position;
      }
      const claimed = page.indexes[i];
      if (rowAnomaly === undefined && claimed !== position) {
        rowAnomaly = {
          code: 'rows',
          index: position,
          message:
            claimed !== undefined && claimed > position
              ? `the entries table has no row for index ${position} (the next row claims index ${claimed})`
              : `the row at position ${position} claims index ${claimed}: rows were duplicated or renumbered`,
        };
      }
    });
    actual.pushPacked(hashes.subarray(0, page.lines.length * HASH_BYTES));
    column.pushPacked(page.leafHashes.subarray(0, page.lines.length * HASH_BYTES));
    return page.lines.length;
  };
  // Read page k + 1 while page k is hashed.
  let pending: Promise<BundlePage> | undefined =
    treeSize > 0 ? source.bundlePage(0, Math.min(treeSize, pageSize)) : undefined;
  for (let start = 0; start < treeSize; start += pageSize) {
    const end = Math.min(treeSize, start + pageSize);
    const page = (await pending) as BundlePage;
    const hashing = hashLines(page.lines);
    await feedTiles(start, end);
    pending = end < treeSize ? source.bundlePage(end, Math.min(treeSize, end + pageSize)) : undefined;
    consume(page, await hashing);
    progress({ phase: 'entries', done: actual.length, total: treeSize });
  }
  // Rows past the committed tree were inserted, unless the log grew meanwhile (a live service):
  // then they are new entries, left to the next verification.
  const extra = await source.bundlePage(treeSize, treeSize + pageSize);
  const beyond = consume(extra, await hashLines(extra.lines));
  const grew = beyond > 0 && (await source.treeSize()) > treeSize;
  const entryCount = grew ? actual.length - beyond : actual.length;

  const checked = await checker.finish();
  const committed = HashList.wrap(checked.leaves);
  anchors.forEach((anchor, i) => {
    anchor.matchedByTree = checked.matches[i];
  });
  const tilesContiguous = !/gap or overlap/.test(checked.problem ?? '');
  if (checked.problem) problems.push({ code: 'node-store', message: checked.problem });
  progress({ phase: 'tree', done: committed.length, total: treeSize });
  // Where the entries equal the node store's leaves, the tree computed from the tiles is theirs too;
  // otherwise their own tree is computed.
  const covered = grew ? treeSize : actual.length;
  const same =
    covered === committed.length &&
    Buffer.compare(
      Buffer.from(actual.packed().buffer, actual.packed().byteOffset, covered * HASH_BYTES),
      Buffer.from(committed.packed().buffer, committed.packed().byteOffset, committed.length * HASH_BYTES),
    ) === 0;
  if (same) {
    for (const anchor of anchors) anchor.matchedByEntries = anchor.matchedByTree;
  } else {
    const fromEntries = new PrefixChecker(anchors, (a, ok) => {
      a.matchedByEntries = ok;
    });
    for (let i = 0; i < covered; i++) fromEntries.push(actual.at(i));
  }

  // 4. Findings.
  for (const anchor of anchors) {
    if (anchor.size > treeSize) {
      problems.push({
        code: 'node-store',
        message: `${anchor.label} covers ${anchor.size} entries but the node store holds only ${treeSize}: the log was truncated`,
      });
    } else if (anchor.matchedByTree === false) {
      problems.push({
        code: 'node-store',
        message: `the node store's leaf hashes do not reproduce the root of ${anchor.label}: the node store was altered`,
      });
    }
  }
  const treeAuthentic =
    tilesContiguous &&
    committed.length === treeSize &&
    anchors.every((a) => a.size > treeSize || a.matchedByTree);
  let columnAuthentic = false;
  if (!treeAuthentic && anchors.length > 0) {
    const fromColumn = new PrefixChecker(anchors, (a, ok) => {
      a.matchedByColumn = ok;
    });
    for (let i = 0; i < column.length; i++) fromColumn.push(column.at(i));
    columnAuthentic = anchors.every((a) => a.matchedByColumn === true);
  }
  const entriesMatchAnchors = anchors.every((a) => a.matchedByEntries === true);

  const actualCovered = grew ? sliceList(actual, treeSize) : actual;
  let firstBad: FirstBadEntry | undefined;
  if (treeAuthentic) {
    const difference = firstDifference(committed, actualCovered);
    if (difference) firstBad = { ...difference, exact: true };
  } else if (columnAuthentic) {
    const difference = firstDifference(sliceList(column, actualCovered.length), actualCovered);
    if (difference) firstBad = { ...difference, exact: true };
  }
  if (!firstBad && !entriesMatchAnchors) firstBad = bracket(anchors, actualCovered.length);
  if (firstBad) problems.unshift({ code: 'entries', index: firstBad.index, message: firstBad.message });
  if (rowAnomaly && !problems.some((p) => p.code === 'entries' && p.index === rowAnomaly?.index)) {
    problems.push(rowAnomaly);
  }
  if (columnMismatch !== undefined && !firstBad) {
    problems.push({
      code: 'leaf-hash-column',
      index: columnMismatch,
      message: `entry ${columnMismatch}: the stored leaf_hash does not match the entry (the column was altered)`,
    });
  }
  if (anchors.length === 0 && treeSize > 0) {
    problems.push({
      code: 'checkpoint',
      message: `no valid signed checkpoint covers the ${treeSize} entries: nothing authenticates them`,
    });
  }

  const signedSize = latest?.size ?? 0;
  const unsignedEntries = Math.max(0, Math.min(entryCount, treeSize) - signedSize);
  const ok = problems.length === 0;
  const summary = ok
    ? `OK: ${entryCount} entries (${prunedCount} pruned) of ${origin} reproduce ${checkpointsVerified} signed checkpoint(s)${externalVerified > 0 ? ` and ${externalVerified} external one(s)` : ''}; latest at size ${signedSize}${unsignedEntries > 0 ? `; ${unsignedEntries} newer entries match the node store, not yet signed` : ''}${pinned ? '' : ' (keys taken from the log: pin them with --key to prove origin)'}`
    : `FAILED: ${problems[0]?.message}`;
  return {
    ok,
    origin,
    treeSize,
    entryCount,
    prunedCount,
    checkpointsVerified,
    checkpointsTotal,
    externalVerified,
    latestCheckpoint: latest ? { size: latest.size, rootHash: toBase64(latest.root) } : undefined,
    unsignedEntries,
    keys: pinned ? 'pinned' : 'log',
    firstBad,
    problems,
    summary,
  };
}

const MARKER_PREFIX = '{"$pruned":"';
const MARKER = /^\{"\$pruned":"[0-9a-f]{64}"\}$/;
function isMarker(line: string): boolean {
  return line.length === MARKER_PREFIX.length + 66 && MARKER.test(line);
}

function failed(origin: string, pinned: boolean, problem: LogProblem): LogReport {
  return {
    ok: false,
    origin,
    treeSize: 0,
    entryCount: 0,
    prunedCount: 0,
    checkpointsVerified: 0,
    checkpointsTotal: 0,
    externalVerified: 0,
    unsignedEntries: 0,
    keys: pinned ? 'pinned' : 'log',
    problems: [problem],
    summary: `FAILED: ${problem.message}`,
  };
}

/**
 * Pushes a tile's leaves and checks every interior node it stores against the recomputed one. A
 * tile holds its nodes in exactly the order the frontier completes them, so a running offset
 * walks both together.
 */
function pushTile<T extends { readonly size: number; readonly root: Uint8Array }>(
  tile: NodeTile,
  committed: HashList,
  tree: PrefixChecker<T>,
  report: (message: string) => void,
): void {
  const expected = (nodesBefore(tile.endSize) - nodesBefore(tile.startSize)) * HASH_BYTES;
  if (tile.hashes.length !== expected) {
    report(
      `the node tile for leaves ${tile.startSize}..${tile.endSize - 1} holds ${tile.hashes.length} bytes, not ${expected}`,
    );
    return;
  }
  const hashes = tile.hashes;
  let offset = 0;
  let bad = false;
  const check = (level: number, index: number, computed: Uint8Array): void => {
    if (level > 0 && !bad) {
      for (let b = 0; b < HASH_BYTES; b++) {
        if (hashes[offset + b] !== computed[b]) {
          bad = true;
          report(
            `stored node (level ${level}, index ${index}) is not the hash of its children: proofs served from it would not verify`,
          );
          break;
        }
      }
    }
    offset += HASH_BYTES;
  };
  for (let leaf = tile.startSize; leaf < tile.endSize; leaf++) {
    const hash = hashes.slice(offset, offset + HASH_BYTES);
    committed.push(hash);
    tree.push(hash, check);
  }
}

function sliceList(list: HashList, length: number): HashList {
  if (length >= list.length) return list;
  return HashList.wrap(list.packed().subarray(0, length * HASH_BYTES));
}

/** Without authentic leaf hashes: the fault lies after the last checkpoint the entries reproduce. */
function bracket(anchors: readonly Anchor[], count: number): FirstBadEntry {
  const proven = anchors
    .filter((a) => a.matchedByEntries === true)
    .reduce((max, a) => Math.max(max, a.size), 0);
  const before = anchors
    .filter((a) => a.matchedByEntries !== true)
    .reduce((min, a) => Math.min(min, a.size), Number.POSITIVE_INFINITY);
  if (count < before && before !== Number.POSITIVE_INFINITY && proven === count) {
    return {
      index: count,
      kind: 'truncated',
      exact: true,
      count: before - count,
      message: `the entries end after ${count} but a signed checkpoint covers ${before}: entries ${count}..${before - 1} are missing`,
    };
  }
  const upper = before === Number.POSITIVE_INFINITY ? count : before;
  return {
    index: proven,
    kind: 'unknown',
    exact: false,
    before: upper,
    message: `the entries no longer match the signed checkpoints: the first bad entry is between index ${proven} and ${upper - 1} (the node store cannot pin it down: it was altered too)`,
  };
}

import type { NodeId } from '@flowloom/ledger';

/** One entry as the appender writes it (index assigned, leaf hash computed). */
export interface EntryRow {
  readonly index: number;
  readonly eventId: string;
  readonly leafHash: Uint8Array;
  readonly entry: string;
  readonly time: string;
  readonly type: string;
  readonly source: string;
  readonly subject: string | null;
  readonly actor: string | null;
  readonly keyId: string | null;
  readonly project: string | null;
  readonly job: string | null;
  readonly outcome: string | null;
}

/**
 * The tree nodes completed by one append, packed: every node hash (leaves included) in the order an
 * append completes them, so node (level, index) sits at a position computed from its coordinates
 * (see domain/tiles.ts). One row per append instead of two per entry.
 */
export interface NodeTile {
  readonly startSize: number;
  readonly endSize: number;
  readonly hashes: Uint8Array;
}

export interface CheckpointRecord {
  readonly id: number;
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  /** Hex key id of the signing key. */
  readonly keyId: string;
  /** The signed C2SP checkpoint note. */
  readonly note: string;
  readonly issuedAt: Date;
}

export interface VerifierKeyRecord {
  readonly keyId: string;
  /** `<name>+<key id>+<base64 key>`. */
  readonly verifierKey: string;
  readonly addedAt: Date;
}

/** Filters over the searchable columns; every field optional, combined with AND. */
export interface EntryFilter {
  readonly from?: Date | undefined;
  /** Exclusive. */
  readonly to?: Date | undefined;
  /** An exact type, or a prefix ending in `*`. */
  readonly type?: string | undefined;
  readonly actor?: string | undefined;
  readonly keyId?: string | undefined;
  readonly project?: string | undefined;
  readonly job?: string | undefined;
  readonly outcome?: string | undefined;
  /** Full-text search over the event's string values: entries holding every word of it (domain/search-words.ts). */
  readonly text?: string | undefined;
}

export interface QueryOptions extends EntryFilter {
  readonly limit: number;
  /** Keyset pagination: only entries after (asc) or before (desc) this index. */
  readonly cursor?: number | undefined;
  readonly order: 'asc' | 'desc';
}

export interface EntryRef {
  readonly index: number;
  readonly eventId: string;
  readonly leafHash: Uint8Array;
}

export interface EntryView {
  readonly index: number;
  readonly eventId: string;
  readonly time: Date;
  readonly type: string;
  readonly source: string;
  readonly subject: string | null;
  readonly actor: string | null;
  readonly keyId: string | null;
  readonly project: string | null;
  readonly job: string | null;
  readonly outcome: string | null;
  readonly pruned: boolean;
  readonly leafHash: Uint8Array;
  /** The canonical entry; null once retention pruned it. */
  readonly entry: string | null;
}

/**
 * Consecutive rows of the entries table as evidence-bundle lines (BUNDLE-FORMAT.md §4): the entry,
 * or a pruned marker carrying the leaf hash. With a filter, entries that do not match become
 * markers too (withheld). Rows come in index order; `indexes` says which index each row claims, so
 * a verifier sees gaps and duplicates left by tampering.
 */
export interface BundlePage {
  readonly start: number;
  readonly lines: readonly string[];
  readonly indexes: readonly number[];
  /** The leaf_hash column of each row, packed (32 bytes each). */
  readonly leafHashes: Uint8Array;
  /** Indexes of rows that matched the filter and are exported in full (all non-pruned without one). */
  readonly matched: readonly number[];
  readonly pruned: number;
}

export interface TypeCount {
  readonly type: string;
  readonly count: number;
  readonly pruned: number;
  readonly first: Date | null;
  readonly last: Date | null;
}

export interface LedgerStats {
  readonly treeSize: number;
  readonly entries: number;
  readonly pruned: number;
  readonly firstEvent: Date | null;
  readonly lastEvent: Date | null;
  readonly byType: readonly TypeCount[];
  /** Entries naming who acted (actor or key owner), and key-bearing entries. */
  readonly withActor: number;
  readonly withKey: number;
  readonly checkpoints: number;
  readonly firstCheckpointAt: Date | null;
  readonly lastCheckpointAt: Date | null;
  readonly prunings: number;
  /** Write-once triggers found on the ledger tables (names). */
  readonly guards: readonly string[];
}

/** Storage of the ledger. Write-once: nothing here updates or deletes, except the audited prune. */
export interface LedgerStore {
  readonly engine: 'pglite' | 'postgres';
  getMeta(name: string): Promise<string | undefined>;
  /** Inserts once; returns the stored value (the existing one when another writer won). */
  putMeta(name: string, value: string): Promise<string>;

  /** Leaves covered by node tiles: the committed tree size. */
  treeSize(): Promise<number>;
  /** Hashes of complete subtrees, in the order asked; fails when one is missing. */
  readNodes(ids: readonly NodeId[]): Promise<Uint8Array[]>;
  /** Which of these event ids are already logged. */
  existingEventIds(ids: readonly string[]): Promise<Set<string>>;
  /**
   * Appends entries and their tile atomically. Fails, leaving everything unchanged, with
   * LedgerConflictError when the log no longer ends at `tile.startSize` (another writer appended),
   * and with DuplicateEventError when an event id is already logged.
   */
  append(rows: readonly EntryRow[], tile: NodeTile): Promise<void>;
  tiles(start: number, end: number): Promise<NodeTile[]>;

  saveCheckpoint(checkpoint: Omit<CheckpointRecord, 'id' | 'issuedAt'>): Promise<CheckpointRecord>;
  latestCheckpoint(): Promise<CheckpointRecord | undefined>;
  /** The newest checkpoint signed at exactly this tree size (after a key rotation there are several). */
  checkpointAt(treeSize: number): Promise<CheckpointRecord | undefined>;
  /** Checkpoints in issue order, after the given id. */
  checkpoints(afterId: number, limit: number): Promise<CheckpointRecord[]>;

  addVerifierKey(key: { keyId: string; verifierKey: string }): Promise<void>;
  /** Every verifier key ever used, most recently added first. */
  verifierKeys(): Promise<VerifierKeyRecord[]>;

  /**
   * Entries [0, n) are in the search index (audit_index), which is derived and maintained in the
   * background: read from the index's watermark, else (none yet) n is the first entry missing.
   */
  indexedUpTo(): Promise<number>;
  /**
   * Adds the attributes of entries [from, to) to the search index and, atomically with them, moves
   * the watermark to `to` when it was at or past `from`; idempotent.
   */
  indexEntries(from: number, to: number): Promise<void>;
  /** Entries [0, n) have their words in the search index (audit_words); as indexedUpTo. */
  wordsUpTo(): Promise<number>;
  /**
   * Adds the words of entries [from, to) (none for pruned ones) to the search index, with their
   * watermark as indexEntries; idempotent, and entries already in (another replica) are not read.
   */
  indexWords(from: number, to: number): Promise<void>;

  indexOfEvent(eventId: string): Promise<number | undefined>;
  /** What a proof needs of an entry (no content), by index or by event id, in one lookup. */
  entryRef(ref: { index: number } | { eventId: string }): Promise<EntryRef | undefined>;
  entry(index: number): Promise<EntryView | undefined>;
  /** Filtered entries; filters other than time go through the search index, so index first (words too for text). */
  query(options: QueryOptions): Promise<EntryView[]>;
  bundlePage(start: number, end: number, filter?: EntryFilter): Promise<BundlePage>;
  stats(): Promise<LedgerStats>;

  /** Types that still have entries with content (per the search index), for retention. */
  typesWithContent(): Promise<string[]>;
  /**
   * The one narrow path that changes entries: removes the content of entries of `type` older than
   * `before` and below index `through` (covered by a checkpoint), keeping their leaf hashes, and
   * records the pruning. Returns how many entries were pruned.
   */
  prune(type: string, before: Date, through: number, actor: string): Promise<number>;
}

/** An appended event id is already in the ledger (a redelivery): nothing was written. */
export class DuplicateEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DuplicateEventError';
  }
}

export class LedgerConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerConflictError';
  }
}

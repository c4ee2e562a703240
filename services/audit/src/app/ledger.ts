import { randomBytes } from 'node:crypto';
import { setImmediate as yieldTurn } from 'node:timers/promises';
import {
  AUDIT_EXPORT_CREATED,
  AUDIT_KEY_ROTATED,
  AUDIT_REPORT_GENERATED,
  AUDIT_RETENTION_APPLIED,
  AUDIT_SOURCE,
  AUDIT_VERIFICATION_COMPLETED,
  type AuditEventType,
  auditEventPayloadSchemas,
  type CloudEvent,
  createEvent,
  nameBasedUuid,
} from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import {
  generateKey,
  keyIdHex,
  MerkleLog,
  type NodeStore,
  parseSignerKey,
  type SignerKey,
  signCheckpoint,
  verifierFor,
} from '@flowloom/ledger';
import type { z } from 'zod';
import { type PreparedEntry, prepareEntry } from '../domain/entry.js';
import { cutoffFor, type RetentionRule } from '../domain/retention.js';
import { packTile } from '../domain/tiles.js';
import type { AuditActivity } from '../ports/audit-source.js';
import type { CheckpointSink } from '../ports/checkpoint-sink.js';
import {
  type CheckpointRecord,
  DuplicateEventError,
  type EntryRef,
  type EntryRow,
  type EntryView,
  LedgerConflictError,
  type LedgerStore,
  type QueryOptions,
} from '../ports/ledger-store.js';
import { type AuditLogger, silentLogger } from '../ports/logger.js';
import type { SigningKeyStore } from '../ports/signing-key-store.js';

export interface LedgerOptions {
  store: LedgerStore;
  signingKeys: SigningKeyStore;
  /** The configured origin; a new log without one gets `flowloom.local/audit/<random>`. */
  origin?: string | undefined;
  sinks?: readonly CheckpointSink[];
  logger?: AuditLogger;
  /** Where the ledger's own events also go (other consumers); best effort, the ledger has them. */
  publish?: ((events: readonly CloudEvent[]) => Promise<void>) | undefined;
  /** Most entries per database transaction. */
  maxBatch?: number;
  /**
   * Generate the signing key when there is none (default). `false` for a reader such as the CLI on
   * a database: it then signs nothing and uses the checkpoints the service signed.
   */
  createKey?: boolean;
  /**
   * Keep the search index (audit_index) up to date in the background after appends (the service).
   * Without it, queries and retention still bring it up to date first.
   */
  autoIndex?: boolean;
  /** Entries each part of the search index may fall behind while appends come first (INDEX_DEFERRAL_LIMIT). */
  indexDeferralLimit?: number;
  now?: () => Date;
}

export interface AppendOutcome {
  /** Entries this call added. */
  readonly appended: number;
  /** Events of this call already in the ledger (redeliveries) or repeated within it. */
  readonly duplicates: number;
  readonly treeSize: number;
}

export interface InclusionProofResult {
  readonly index: number;
  readonly eventId?: string;
  readonly treeSize: number;
  readonly leafHash: Uint8Array;
  readonly rootHash: Uint8Array;
  readonly proof: Uint8Array[];
}

interface Waiter {
  readonly events: readonly unknown[];
  resolve(outcome: AppendOutcome): void;
  reject(error: unknown): void;
}

/** One part of the search index: entries [0, to) are in it. */
interface IndexPart {
  readonly name: 'attributes' | 'words';
  to: number;
  readonly build: (from: number, to: number) => Promise<void>;
}

interface RetentionResult {
  readonly type: string;
  readonly pruned: number;
  readonly cutoff: string;
}

const ORIGIN_META = 'origin';
/** Who changed the key when the service found another one at start (the operator is not known). */
const START_ACTOR = 'flowloom/audit (at start)';
/**
 * Events prepared (scrubbed, canonicalised, hashed) between turns of the event loop: about 0.35 ms
 * of a governed gateway's events. A request passes through this thread several times on its way,
 * and may wait out a slice each time: with slices of 32 (about 1.4 ms) a governed gateway at
 * 500 req/s answered 10 % of requests more than 11 ms late; with 8, 6-9 ms, for the same CPU.
 */
const PREPARE_SLICE = 8;
/**
 * Times an append reloads the tree and tries again after another replica appended first. Replicas
 * share the partitions of one topic, so a few collisions in a row are normal under load; an append
 * still refused after that fails, and its events are redelivered.
 */
const CONFLICT_RETRIES = 5;
/**
 * Entries each part of the search index may fall behind while appends wait (on PGlite about 1.5 s
 * of attribute work, 4 s of words): past it, indexing goes on between appends, so a query under
 * sustained load waits at most that long.
 */
const INDEX_DEFERRAL_LIMIT = 50_000;
/** Entries per background index step (~15 ms of the embedded database's thread for attributes, ~30 ms for words). */
export const INDEX_STEP = 500;
/**
 * Pause before a background index step when the index is nearly caught up: it gathers the entries
 * appended meanwhile into one step, each step being a few statements whatever its size. Queries
 * never see the pause (they bring the index up to date first). At a governed 500 req/s, 250 ms
 * instead of 25 took the embedded database's thread 14.1-14.3 s instead of 15.0-15.4 (2 paired
 * runs), in 340 steps of words instead of 880, and CPU per request 4 % lower.
 */
const INDEX_PAUSE_MS = 250;
/** Pause after a failed background index step before trying again. */
const INDEX_RETRY_MS = 1_000;
/** How long a text search through the API waits for search words behind the entries. */
const TEXT_SEARCH_WAIT_MS = 5_000;

export interface SearchResult {
  readonly entries: EntryView[];
  /** Committed entries a text search did not cover: their words were not indexed yet (0 without text). */
  readonly notSearched: number;
}

/**
 * The audit ledger: an RFC 9162 log whose entries are canonical events, stored write-once, with
 * signed C2SP checkpoints. Appends are group-committed: calls arriving while a transaction runs are
 * merged into the next one, and each call resolves only once its entries are durable. Redelivered
 * events (same id) are appended once. One process appends at a time (the store serialises writers
 * across processes and a conflicting writer makes this one reload the tree).
 */
export class AuditLedger {
  private log!: MerkleLog;
  private staged: { start: number; rows: EntryRow[] } | undefined;
  private readonly waiters: Waiter[] = [];
  private draining: Promise<void> | undefined;
  /** A delivery of at least INDEX_STEP entries is being written: its sender is likely behind. */
  private writingBacklog = false;
  private checkpointing: Promise<unknown> = Promise.resolve();
  private externalPending = new Map<string, CheckpointRecord>();
  private lastCheckpointSize = -1;
  /** How far each part of the search index is contiguous, and how it is built. */
  private readonly attributes: IndexPart;
  private readonly words: IndexPart;
  private maintenance: Promise<unknown> = Promise.resolve();
  private indexTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly store: LedgerStore;
  private readonly logger: AuditLogger;
  private readonly maxBatch: number;
  private readonly now: () => Date;
  private readonly nodeStore: NodeStore;

  private constructor(
    private readonly options: LedgerOptions,
    readonly origin: string,
    private signer: SignerKey | undefined,
  ) {
    this.store = options.store;
    this.logger = options.logger ?? silentLogger;
    this.maxBatch = options.maxBatch ?? 5_000;
    this.now = options.now ?? (() => new Date());
    this.attributes = { name: 'attributes', to: 0, build: (from, to) => this.store.indexEntries(from, to) };
    this.words = { name: 'words', to: 0, build: (from, to) => this.store.indexWords(from, to) };
    this.nodeStore = {
      readTreeSize: () => this.store.treeSize(),
      readNodes: (ids) => this.store.readNodes(ids),
      writeNodes: async (nodes, treeSize) => {
        const staged = this.staged;
        if (!staged) throw new AppError('internal', 'ledger nodes written outside an append');
        await this.store.append(staged.rows, {
          startSize: staged.start,
          endSize: treeSize,
          hashes: packTile(staged.start, treeSize, nodes),
        });
      },
    };
  }

  /** Opens the ledger: its origin (fixed at first start), signing key (generated once) and tree. */
  static async open(options: LedgerOptions): Promise<AuditLedger> {
    const { store } = options;
    const stored = await store.getMeta(ORIGIN_META);
    if (stored !== undefined && options.origin !== undefined && options.origin !== stored) {
      throw new AppError(
        'invalid_request',
        `this ledger's origin is "${stored}" but audit.origin says "${options.origin}". The origin of an existing log never changes. Fix: unset FLOWLOOM_AUDIT_ORIGIN (audit.origin) or set it to "${stored}".`,
      );
    }
    // A new log takes its name from the configuration, else from an existing signing key (the key
    // is the log's identity), else a fresh random one.
    const origin =
      stored ??
      (await store.putMeta(
        ORIGIN_META,
        options.origin ??
          (await existingKeyName(options.signingKeys)) ??
          `flowloom.local/audit/${randomBytes(4).toString('hex')}`,
      ));
    const loaded = await loadSigner(options.signingKeys, origin, options.createKey ?? true);
    const ledger = new AuditLedger(options, origin, loaded?.signer);
    ledger.log = await MerkleLog.open(ledger.nodeStore);
    ledger.lastCheckpointSize = (await store.latestCheckpoint())?.treeSize ?? -1;
    ledger.attributes.to = Math.min(await store.indexedUpTo(), ledger.log.size);
    ledger.words.to = Math.min(await store.wordsUpTo(), ledger.log.size);
    if (loaded) await ledger.adoptStartKey(loaded.generated);
    ledger.scheduleIndexing();
    return ledger;
  }

  /**
   * Publishes the key this process signs with. When it is not the key of the latest checkpoint (a
   * replaced key file or Secret, or a lost key generated anew), the change is recorded as a key
   * rotation and a checkpoint is signed with the new key at once, so the trail shows when and from
   * which key it changed. Replicas starting together with the same new key record it once: the
   * first publishes the key, and a key already the most recently published one is no change to
   * record. The event goes in before the key is published, so a crash in between records it again
   * rather than never.
   */
  private async adoptStartKey(generated: boolean): Promise<void> {
    const signer = this.signer as SignerKey;
    const keyId = this.keyId;
    const verifierKey = verifierFor(signer).text;
    const [latest, published] = await Promise.all([this.store.latestCheckpoint(), this.store.verifierKeys()]);
    const changed =
      latest !== undefined && latest.keyId !== keyId && published[0]?.verifierKey !== verifierKey;
    if (changed) {
      const how = generated ? 'regenerated-at-start' : 'replaced-at-start';
      // Replicas starting together with one new key all see the change; the id is named by the
      // change itself, so the ledger's idempotent append keeps one record of it.
      const id = nameBasedUuid(
        `${this.origin}\n${AUDIT_KEY_ROTATED}\n${latest.treeSize}\n${latest.keyId}\n${keyId}`,
      );
      await this.recordEvent(
        AUDIT_KEY_ROTATED,
        { actor: START_ACTOR, previousKeyId: latest.keyId, keyId, verifierKey, how },
        id,
      );
      this.logger.warn(
        { previousKeyId: latest.keyId, keyId, how, location: this.options.signingKeys.location },
        'audit: started with another signing key than the one of the latest checkpoint; recorded as a key rotation',
      );
    }
    await this.store.addVerifierKey({ keyId, verifierKey });
    if (changed) await this.checkpoint();
  }

  /** Committed entries. */
  get size(): number {
    return this.log.size;
  }

  get keyId(): string {
    return this.signer ? keyIdHex(this.signer.keyId) : '';
  }

  get ledgerStore(): LedgerStore {
    return this.store;
  }

  /**
   * Appends events (any shape; secrets are removed and the result canonicalised) and resolves once
   * they are durable. Events already logged are skipped.
   */
  append(events: readonly unknown[]): Promise<AppendOutcome> {
    if (this.closed) return Promise.reject(new AppError('unavailable', 'the audit ledger is closed'));
    if (events.length === 0) return Promise.resolve({ appended: 0, duplicates: 0, treeSize: this.size });
    return new Promise((resolve, reject) => {
      this.waiters.push({ events, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiters.length > 0) {
        const batch: Waiter[] = [];
        let count = 0;
        while (this.waiters.length > 0) {
          const next = this.waiters[0] as Waiter;
          if (batch.length > 0 && count + next.events.length > this.maxBatch) break;
          batch.push(next);
          this.waiters.shift();
          count += next.events.length;
        }
        try {
          this.writingBacklog = count >= INDEX_STEP;
          const appended = await this.commit(batch.flatMap((w) => w.events));
          this.scheduleIndexing();
          for (const waiter of batch) {
            let mine = 0;
            for (const event of waiter.events) {
              const id = (event as { id?: unknown }).id;
              if (typeof id === 'string' && appended.delete(id)) mine++;
            }
            waiter.resolve({ appended: mine, duplicates: waiter.events.length - mine, treeSize: this.size });
          }
        } catch (error) {
          for (const waiter of batch) waiter.reject(error);
        } finally {
          this.writingBacklog = false;
        }
      }
    } finally {
      this.draining = undefined;
    }
  }

  /** Appends what is new among `events`; returns the ids appended. */
  private async commit(events: readonly unknown[]): Promise<Set<string>> {
    const receivedAt = this.now();
    const seen = new Set<string>();
    const unique: PreparedEntry[] = [];
    for (let i = 0; i < events.length; i++) {
      // In `flowloom up` this thread also answers requests: a large delivery is prepared a slice
      // at a time, letting them in between.
      if (i > 0 && i % PREPARE_SLICE === 0) await yieldTurn();
      const prepared = prepareEntry(events[i] as Record<string, unknown>, receivedAt);
      if (seen.has(prepared.eventId)) continue;
      seen.add(prepared.eventId);
      unique.push(prepared);
    }
    const appended = new Set<string>();
    for (let at = 0; at < unique.length; at += this.maxBatch) {
      const chunk = unique.slice(at, at + this.maxBatch);
      for (const entry of await this.appendNew(chunk, CONFLICT_RETRIES)) appended.add(entry.eventId);
    }
    return appended;
  }

  /**
   * Appends the entries of `chunk` not yet logged. Redeliveries are rare, so the chunk is first
   * appended as is (the unique event id refuses a duplicate and nothing is written); only then are
   * the logged ids looked up and skipped.
   */
  private async appendNew(
    chunk: readonly PreparedEntry[],
    retriesLeft: number,
    checkExisting = false,
  ): Promise<readonly PreparedEntry[]> {
    let fresh = chunk;
    if (checkExisting) {
      const existing = await this.store.existingEventIds(chunk.map((p) => p.eventId));
      fresh = chunk.filter((p) => !existing.has(p.eventId));
    }
    if (fresh.length === 0) return [];
    const start = this.log.size;
    this.staged = {
      start,
      rows: fresh.map((p, i) => ({
        index: start + i,
        eventId: p.eventId,
        leafHash: p.leafHash,
        entry: p.entry,
        time: p.time,
        type: p.type,
        source: p.source,
        subject: p.subject,
        actor: p.actor,
        keyId: p.keyId,
        project: p.project,
        job: p.job,
        outcome: p.outcome,
      })),
    };
    try {
      await this.log.appendLeafHashes(fresh.map((p) => p.leafHash));
      return fresh;
    } catch (error) {
      if (error instanceof DuplicateEventError && !checkExisting) {
        this.staged = undefined;
        return this.appendNew(chunk, retriesLeft, true);
      }
      if (!(error instanceof LedgerConflictError) || retriesLeft === 0) throw error;
      this.logger.warn({ err: error }, 'audit ledger: another writer appended; reloading the tree');
      this.staged = undefined;
      this.log = await MerkleLog.open(this.nodeStore);
      return this.appendNew(chunk, retriesLeft - 1, true);
    } finally {
      this.staged = undefined;
    }
  }

  /** Runs index and retention work one at a time (they must not interleave: see audit_prune). */
  private serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.maintenance.then(task);
    this.maintenance = run.catch(() => undefined);
    return run;
  }

  /** Indexes the next entries of `part`, at most `limit`, below `upTo`. */
  private async indexStep(part: IndexPart, limit: number, upTo = this.log.size): Promise<void> {
    const from = part.to;
    const to = Math.min(upTo, from + limit);
    if (to <= from) return;
    await part.build(from, to);
    part.to = to;
  }

  /**
   * Brings `part` of the search index up to every committed entry (as catchUpIndex), or as far as
   * it gets by `deadline` (epoch ms); returns the committed size it aimed at. `committedSize`, when
   * given, is that size as read just before (saving a second read of the store's).
   */
  private catchUp(
    part: IndexPart,
    deadline = Number.POSITIVE_INFINITY,
    committedSize?: number,
  ): Promise<number> {
    return this.serially(async () => {
      const committed = committedSize ?? Math.max(this.log.size, await this.store.treeSize());
      while (part.to < committed && Date.now() < deadline) await this.indexStep(part, 5_000, committed);
      return committed;
    });
  }

  /**
   * Brings the search index's attributes up to every committed entry, those other replicas
   * appended included (this one's tree knows of them only once it appends again).
   */
  async catchUpIndex(): Promise<void> {
    await this.catchUp(this.attributes);
  }

  /** Brings the search index's words up to every committed entry. */
  async catchUpWords(): Promise<void> {
    await this.catchUp(this.words);
  }

  /** Entries committed but without their attributes in the search index yet. */
  get indexBacklog(): number {
    return this.log.size - this.attributes.to;
  }

  /** Entries committed but without their words in the search index yet. */
  get wordsBacklog(): number {
    return this.log.size - this.words.to;
  }

  // Small steps between appends: the embedded database serves one statement at a time, and the
  // gateway shares it. The evidence comes first: while appends are waiting, or one of a step or
  // more is being written (a relay catching up hands over full deliveries, each once the last is
  // in, so none waits), the index waits too, each part up to INDEX_DEFERRAL_LIMIT entries behind,
  // and catches up when they are done; a query brings it up to date before it answers. Small
  // deliveries (a gateway keeping up) don't hold it. After 18 s of a saturated governed gateway
  // (~29,000 events in its outbox) the ledger took them in ~7 s, ~13.5 s with index steps between
  // deliveries. Attributes come before words (two thirds of the work): a sustained stream the
  // database cannot both append and fully index stays filterable, and its words follow when there
  // is time, or when a text query asks. Behind by a step or more, the next step follows at once: a
  // pause after every step capped indexing at ~5,500 entries/s whatever the database could do.
  private nextIndexPart(): IndexPart | undefined {
    const appendsFirst = this.writingBacklog || this.waiters.length > 0;
    if (!appendsFirst) return this.indexBacklog > 0 ? this.attributes : this.words;
    // Each part is bounded on its own, the one furthest behind first (when it is within the bound,
    // so is the other): words held back behind attributes under the bound, or always just past it,
    // fell a 1,000,000-request soak behind.
    const furthest = this.words.to < this.attributes.to ? this.words : this.attributes;
    const limit = this.options.indexDeferralLimit ?? INDEX_DEFERRAL_LIMIT;
    return this.log.size - furthest.to >= limit ? furthest : undefined;
  }

  private scheduleIndexing(delay = INDEX_PAUSE_MS): void {
    if (!this.options.autoIndex || this.closed || this.indexTimer) return;
    if (this.indexBacklog <= 0 && this.wordsBacklog <= 0) return;
    this.indexTimer = setTimeout(() => {
      const part = this.nextIndexPart();
      if (!part) {
        this.indexTimer = undefined;
        this.scheduleIndexing();
        return;
      }
      let next = INDEX_PAUSE_MS;
      void this.serially(() => this.indexStep(part, INDEX_STEP))
        .then(() => {
          if (this.indexBacklog >= INDEX_STEP || this.wordsBacklog >= INDEX_STEP) next = 0;
        })
        .catch((error: unknown) => {
          next = INDEX_RETRY_MS;
          this.logger.warn({ err: error, part: part.name }, 'audit: indexing failed; will retry');
        })
        .finally(() => {
          this.indexTimer = undefined;
          this.scheduleIndexing(next);
        });
    }, delay);
    this.indexTimer.unref();
  }

  /** Filtered entries, through an up-to-date search index (its words too when searching text). */
  async query(options: QueryOptions): Promise<EntryView[]> {
    return (await this.search(options, Number.POSITIVE_INFINITY)).entries;
  }

  /**
   * What the query APIs answer: as `query`, but a text search waits at most `wordsWaitMs` for the
   * search words of entries still behind (after a long burst there can be a million: minutes), then
   * answers from what is searchable and says how many committed entries, the newest, it did not
   * cover. Filters without text always cover everything.
   */
  async search(options: QueryOptions, wordsWaitMs = TEXT_SEARCH_WAIT_MS): Promise<SearchResult> {
    const indexed = await this.catchUp(this.attributes);
    if (!options.text) return { entries: await this.store.query(options), notSearched: 0 };
    const committed = await this.catchUp(this.words, Date.now() + wordsWaitMs, indexed);
    const entries = await this.store.query(options);
    return { entries, notSearched: Math.max(0, committed - this.words.to) };
  }

  /** Resolves when everything submitted so far is committed (or failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * Signs a checkpoint of the committed tree, stores it and copies it to the external sinks. When
   * the latest checkpoint already covers this size with the current key, that one is returned.
   */
  checkpoint(): Promise<CheckpointRecord> {
    const run = this.checkpointing.then(() => this.issueCheckpoint());
    this.checkpointing = run.catch(() => undefined);
    return run;
  }

  /** A checkpoint only when entries were appended since the last one. */
  async checkpointIfNew(): Promise<CheckpointRecord | undefined> {
    await this.retryExternal();
    if (this.log.size <= this.lastCheckpointSize) return undefined;
    return this.checkpoint();
  }

  private async issueCheckpoint(): Promise<CheckpointRecord> {
    const size = this.log.size;
    const rootHash = this.log.rootHash();
    const keyId = this.keyId;
    const latest = await this.store.latestCheckpoint();
    if (latest && latest.treeSize === size && latest.keyId === keyId) return latest;
    if (!this.signer) {
      // A reader without the key: the latest checkpoint the service signed is as fresh as it gets.
      if (latest) return latest;
      throw new AppError('unavailable', 'the ledger has no signed checkpoint yet and no signing key here');
    }
    const note = signCheckpoint({ origin: this.origin, size, rootHash, extensions: [] }, [this.signer]);
    const record = await this.store.saveCheckpoint({ treeSize: size, rootHash, keyId, note });
    this.lastCheckpointSize = Math.max(this.lastCheckpointSize, size);
    for (const sink of this.options.sinks ?? []) this.externalPending.set(sink.name, record);
    await this.retryExternal();
    return record;
  }

  /** Copies the newest checkpoint to each sink that has not received it; a later one supersedes. */
  private async retryExternal(): Promise<void> {
    for (const sink of this.options.sinks ?? []) {
      const record = this.externalPending.get(sink.name);
      if (!record) continue;
      try {
        await sink.publish(record);
        if (this.externalPending.get(sink.name) === record) this.externalPending.delete(sink.name);
      } catch (error) {
        this.logger.warn(
          { err: error, sink: sink.name, treeSize: record.treeSize },
          'audit: could not copy a checkpoint outside the database; will retry',
        );
      }
    }
  }

  /** Checkpoints not yet copied to a sink (by sink name). */
  externalBacklog(): string[] {
    return [...this.externalPending.keys()];
  }

  /** Verifier keys (vkey text): the current key first, then every retired one. */
  async verifierKeys(): Promise<string[]> {
    const stored = (await this.store.verifierKeys()).map((k) => k.verifierKey);
    if (!this.signer) return stored;
    const current = verifierFor(this.signer).text;
    return [current, ...stored.filter((k) => k !== current)];
  }

  /**
   * Replaces the signing key: the new verifier key is published first, then the key file is
   * replaced and a checkpoint is signed with the new key. Old checkpoints stay verifiable with the
   * old verifier key, which stays in the published list.
   */
  async rotateKey(actor: string): Promise<{ previousKeyId: string; keyId: string; verifierKey: string }> {
    if (!this.signer) throw new AppError('unavailable', 'the signing key is not available here');
    if (!this.options.signingKeys.writable) {
      // Replicas share one key from outside (a Kubernetes Secret): replacing it in one pod only
      // would leave the others signing with the old key.
      throw new AppError(
        'conflict',
        `the audit signing key is provided from outside (${this.options.signingKeys.location}, read-only), so it cannot be rotated through the API. Fix: create a new key with \`flowloom audit keygen --out FILE\`, replace the key in its Secret (or file) and restart the audit service; the change is recorded in the trail at start (see deploy/README.md, "The audit signing key").`,
      );
    }
    const previousKeyId = this.keyId;
    const next = generateKey(this.origin);
    const keyId = keyIdHex(next.signer.keyId);
    await this.store.addVerifierKey({ keyId, verifierKey: next.verifierKey });
    await this.options.signingKeys.save(next.signerKey);
    await this.checkpointing;
    this.signer = next.signer;
    await this.checkpoint();
    await this.recordEvent(AUDIT_KEY_ROTATED, {
      actor,
      previousKeyId,
      keyId,
      verifierKey: next.verifierKey,
      how: 'api',
    });
    this.logger.info({ previousKeyId, keyId }, 'audit: signing key rotated');
    return { previousKeyId, keyId, verifierKey: next.verifierKey };
  }

  /**
   * RFC 9162 inclusion proof of entry `index` in the tree of `treeSize` (default: committed size).
   * `entry`: the entry's reference when the caller looked it up already (one query fewer).
   */
  async inclusionProof(index: number, treeSize = this.size, entry?: EntryRef): Promise<InclusionProofResult> {
    this.requireSize(treeSize);
    if (!Number.isSafeInteger(index) || index < 0 || index >= treeSize) {
      throw new AppError('not_found', `entry ${index} is not in a tree of ${treeSize} entries`);
    }
    const [{ proof, rootHash }, ref] = await Promise.all([
      // The proof's read brings the compact range of treeSize, from which the root then follows.
      this.log.inclusionProof(index, treeSize).then(async (proof) => ({
        proof,
        rootHash: await this.log.rootHashAt(treeSize),
      })),
      entry ?? this.store.entryRef({ index }),
    ]);
    if (!ref || ref.index !== index)
      throw new AppError('not_found', `entry ${index} is missing from the ledger`);
    return { index, eventId: ref.eventId, treeSize, leafHash: ref.leafHash, rootHash, proof };
  }

  async inclusionProofByEvent(eventId: string, treeSize = this.size): Promise<InclusionProofResult> {
    const ref = await this.store.entryRef({ eventId });
    if (ref === undefined) throw new AppError('not_found', `event ${eventId} is not in the ledger`);
    return this.inclusionProof(ref.index, treeSize, ref);
  }

  async inclusionProofs(indexes: readonly number[], treeSize: number): Promise<Uint8Array[][]> {
    this.requireSize(treeSize);
    return Promise.all(
      indexes.map((index) => {
        if (!Number.isSafeInteger(index) || index < 0 || index >= treeSize) {
          throw new AppError('invalid_request', `entry ${index} is not in a tree of ${treeSize} entries`);
        }
        return this.log.inclusionProof(index, treeSize);
      }),
    );
  }

  async consistencyProof(
    size1: number,
    size2 = this.size,
  ): Promise<{ size1: number; size2: number; root1: Uint8Array; root2: Uint8Array; proof: Uint8Array[] }> {
    this.requireSize(size2);
    if (!Number.isSafeInteger(size1) || size1 < 0 || size1 > size2) {
      throw new AppError('invalid_request', `the first size must be between 0 and ${size2}`);
    }
    const [proof, root1, root2] = await Promise.all([
      this.log.consistencyProof(size1, size2),
      this.log.rootHashAt(size1),
      this.log.rootHashAt(size2),
    ]);
    return { size1, size2, root1, root2, proof };
  }

  private requireSize(treeSize: number): void {
    if (!Number.isSafeInteger(treeSize) || treeSize < 0 || treeSize > this.size) {
      throw new AppError(
        'invalid_request',
        `tree size ${treeSize} is not between 0 and the ledger's size ${this.size}`,
      );
    }
  }

  entry(index: number): Promise<EntryView | undefined> {
    return this.store.entry(index);
  }

  /**
   * Removes the content of entries past their retention, only below the latest checkpoint (their
   * hashes are signed), through the store's audited prune path, and records what it did.
   */
  async applyRetention(
    rules: readonly RetentionRule[],
    actor = 'flowloom/audit retention',
  ): Promise<RetentionResult[]> {
    if (rules.length === 0) return [];
    await this.catchUpIndex();
    const results = await this.serially(async () => {
      const latest = await this.store.latestCheckpoint();
      if (!latest || latest.treeSize === 0) return [];
      const now = this.now();
      const out: RetentionResult[] = [];
      for (const type of await this.store.typesWithContent()) {
        const cutoff = cutoffFor(type, rules, now);
        if (!cutoff) continue;
        const pruned = await this.store.prune(type, cutoff, latest.treeSize, actor);
        if (pruned > 0) out.push({ type, pruned, cutoff: cutoff.toISOString() });
      }
      return out;
    });
    if (results.length > 0) {
      const through = (await this.store.latestCheckpoint())?.treeSize ?? 0;
      await this.recordEvent(AUDIT_RETENTION_APPLIED, { actor, through, pruned: results });
      this.logger.info({ results }, 'audit: retention pruned expired entry content');
    }
    return results;
  }

  /** Records an export, verification or report in the ledger. */
  async record(activity: AuditActivity, actor: string): Promise<void> {
    switch (activity.kind) {
      case 'export': {
        const { kind: _, ...details } = activity;
        return this.recordEvent(AUDIT_EXPORT_CREATED, { actor, ...details });
      }
      case 'verification': {
        const { kind: _, ...details } = activity;
        const outcome = activity.ok ? 'passed' : 'failed';
        return this.recordEvent(AUDIT_VERIFICATION_COMPLETED, { actor, outcome, ...details });
      }
      case 'report': {
        const { kind: _, ...details } = activity;
        return this.recordEvent(AUDIT_REPORT_GENERATED, { actor, ...details });
      }
    }
  }

  /** Appends one of the ledger's own events; its payload is checked against the contract first. */
  private async recordEvent<T extends AuditEventType>(
    type: T,
    data: z.input<(typeof auditEventPayloadSchemas)[T]>,
    id?: string,
  ): Promise<void> {
    const payload = auditEventPayloadSchemas[type].parse(data);
    const created = createEvent(type, AUDIT_SOURCE, payload, payload.actor);
    const event = id === undefined ? created : { ...created, id };
    await this.append([event]);
    try {
      await this.options.publish?.([event]);
    } catch (error) {
      this.logger.warn(
        { err: error, type },
        'audit: could not publish an audit event to the bus (it is in the ledger)',
      );
    }
  }

  /** Stops taking appends, finishes the pending ones and signs a last checkpoint. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.indexTimer) clearTimeout(this.indexTimer);
    this.indexTimer = undefined;
    await this.maintenance;
    await this.checkpointIfNew().catch((error: unknown) =>
      this.logger.warn({ err: error }, 'audit: the final checkpoint failed'),
    );
  }
}

/** The name (log origin) of the signing key already on file, if it is a valid key. */
async function existingKeyName(keys: SigningKeyStore): Promise<string | undefined> {
  const text = await keys.load();
  if (text === undefined) return undefined;
  try {
    return parseSignerKey(text.trim()).name;
  } catch {
    return undefined;
  }
}

/**
 * The key on file, else a new one saved there (when `create`), else none. `generated`: created
 * here because there was no key file.
 */
async function loadSigner(
  keys: SigningKeyStore,
  origin: string,
  create: boolean,
): Promise<{ signer: SignerKey; generated: boolean } | undefined> {
  const text = await keys.load();
  if (text === undefined) {
    if (!create) return undefined;
    const generated = generateKey(origin);
    await keys.save(generated.signerKey);
    return { signer: generated.signer, generated: true };
  }
  let signer: SignerKey;
  try {
    signer = parseSignerKey(text.trim());
  } catch (error) {
    throw new AppError(
      'invalid_request',
      `the audit signing key at ${keys.location} is not a valid key: ${(error as Error).message}`,
    );
  }
  if (signer.name !== origin) {
    throw new AppError(
      'invalid_request',
      `the audit signing key at ${keys.location} is for the log "${signer.name}", but this ledger is "${origin}". Fix: point FLOWLOOM_AUDIT_SIGNING_KEY_FILE at this log's key.`,
    );
  }
  return { signer, generated: false };
}

import { setImmediate as yieldTurn } from 'node:timers/promises';
import type { NodeId } from '@flowloom/ledger';
import { type Db, migrateUnlessApplied, type Queryable, type SqlParam } from '@flowloom/store';
import { searchQuery, searchWords, textMatcher } from '../domain/search-words.js';
import { completionSize, HASH_BYTES, nodePosition, nodesBefore } from '../domain/tiles.js';
import {
  type BundlePage,
  type CheckpointRecord,
  DuplicateEventError,
  type EntryFilter,
  type EntryRef,
  type EntryRow,
  type EntryView,
  LedgerConflictError,
  type LedgerStats,
  type LedgerStore,
  type NodeTile,
  type QueryOptions,
  type VerifierKeyRecord,
} from '../ports/ledger-store.js';
import { auditMigrations, LEDGER_TABLES, READ_NODES_QUERY } from './migrations.js';

/** Serialises appends across processes sharing a database (two replicas never both append). */
const APPEND_LOCK = 7412;
/** Entries per INSERT statement of an append (~1 ms to serialise on the caller's thread). */
const INSERT_SLICE = 1000;
/** Entries whose search words are split between turns of the event loop (a few tenths of a ms). */
const WORDS_SLICE = 8;

/** A table derived from the entries in index order, with the row recording how far it is contiguous. */
interface DerivedPart {
  readonly table: string;
  readonly progress: string;
}
/**
 * SQL true when entry e is not in `table` yet. A scalar subquery, probed per entry through the
 * table's key: NOT EXISTS lets the planner turn it into a hash anti-join reading the whole table
 * per batch, which it did on PGlite (no statistics there), making a catch-up quadratic.
 */
const missingFrom = (table: string, idx = 'e.idx'): string =>
  `(select x.idx from ${table} x where x.idx = ${idx}) is null`;
const ATTRIBUTES: DerivedPart = { table: 'audit_index', progress: 'audit_index_progress' };
const WORDS: DerivedPart = { table: 'audit_words', progress: 'audit_words_progress' };

const asNumber = (value: unknown): number => (typeof value === 'number' ? value : Number(value));
const asBytes = (value: unknown): Uint8Array => {
  if (value instanceof Uint8Array) return value;
  throw new Error('expected bytea');
};
const asDate = (value: unknown): Date => (value instanceof Date ? value : new Date(String(value)));
const asText = (value: unknown): string | null =>
  value === null || value === undefined ? null : String(value);
const buffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * Builds a WHERE fragment from a filter with every value as a parameter, never as SQL text: user
 * input cannot change the statement. `indexed`: the attribute filters go to the search index
 * (alias i), words to their index (alias w), time to the entries (alias e); otherwise everything
 * is evaluated on the entry row.
 */
class Conditions {
  readonly parts: string[] = [];
  constructor(
    readonly params: SqlParam[],
    private readonly indexed = false,
  ) {}

  param(value: SqlParam): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  add(filter: EntryFilter | undefined): this {
    if (!filter) return this;
    const e = this.indexed ? 'e.' : '';
    const i = this.indexed ? 'i.' : '';
    if (filter.from) this.parts.push(`${e}event_time >= ${this.param(filter.from)}::timestamptz`);
    if (filter.to) this.parts.push(`${e}event_time < ${this.param(filter.to)}::timestamptz`);
    if (filter.type) {
      if (filter.type.endsWith('*')) {
        const prefix = filter.type.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`);
        this.parts.push(`${i}event_type like ${this.param(`${prefix}%`)} escape '\\'`);
      } else {
        this.parts.push(`${i}event_type = ${this.param(filter.type)}`);
      }
    }
    if (filter.actor) this.parts.push(`${i}actor = ${this.param(filter.actor)}`);
    if (filter.keyId) this.parts.push(`${i}key_id = ${this.param(filter.keyId)}`);
    if (filter.project) this.parts.push(`${i}project = ${this.param(filter.project)}`);
    if (filter.job) this.parts.push(`${i}job = ${this.param(filter.job)}`);
    if (filter.outcome) this.parts.push(`${i}outcome = ${this.param(filter.outcome)}`);
    // Without the index (a bundle page) the text is matched on the entries as read: withheldByText.
    if (filter.text && this.indexed) {
      const parsed = `plainto_tsquery('simple', ${this.param(filter.text)})`;
      const words = searchQuery(filter.text);
      if (words === undefined) this.parts.push(`w.search @@ ${parsed}`);
      // Entries are indexed with the words split as the query's are; those indexed before that
      // hold the database parser's words, which its own query of the text matches.
      else this.parts.push(`w.search @@ (${this.param(words)}::tsquery || ${parsed})`);
    }
    return this;
  }

  sql(empty = 'true'): string {
    return this.parts.length === 0 ? empty : this.parts.join(' and ');
  }
}

/** Whether a filter needs the search index (anything beyond the time range). */
function usesIndex(filter: EntryFilter): boolean {
  return [
    filter.type,
    filter.actor,
    filter.keyId,
    filter.project,
    filter.job,
    filter.outcome,
    filter.text,
  ].some((v) => v !== undefined && v !== '');
}

function hasFilter(filter: EntryFilter | undefined): boolean {
  return filter !== undefined && Object.values(filter).some((v) => v !== undefined && v !== '');
}

const MARKER_SQL = `'{"$pruned":"' || encode(leaf_hash, 'hex') || '"}'`;
const MARKER_PREFIX = '{"$pruned":"';

/** The bundle line of an entry withheld or pruned, as MARKER_SQL writes it. */
function markerOf(leafHash: Uint8Array): string {
  return `${MARKER_PREFIX}${Buffer.from(leafHash).toString('hex')}"}`;
}

/**
 * The page with the entries that do not hold the filter's text withheld (their marker instead).
 * Matched here, on the entries read, with the words the search index holds: the same entries a
 * query finds, where the database's own text parser (which splits "tier-2" or "1.5" differently)
 * would have exported others.
 */
function withheldByText(page: BundlePage, text: string): BundlePage {
  const matches = textMatcher(text);
  const lines = [...page.lines];
  const matched: number[] = [];
  const exported = new Set(page.matched);
  page.indexes.forEach((idx, i) => {
    if (!exported.has(idx)) return;
    if (matches(lines[i] ?? '')) matched.push(idx);
    else lines[i] = markerOf(page.leafHashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES));
  });
  return { ...page, lines, matched };
}

/** Whether a bundle line is a pruned marker (as written by MARKER_SQL). */
function prunedLeafHashLine(line: string): boolean {
  return line.length === MARKER_PREFIX.length + 66 && line.startsWith(MARKER_PREFIX);
}

function viewOf(row: Record<string, unknown>): EntryView {
  return {
    index: asNumber(row['idx']),
    eventId: String(row['event_id']),
    time: asDate(row['event_time']),
    type: String(row['event_type']),
    source: String(row['source']),
    subject: asText(row['subject']),
    actor: asText(row['actor']),
    keyId: asText(row['key_id']),
    project: asText(row['project']),
    job: asText(row['job']),
    outcome: asText(row['outcome']),
    pruned: row['pruned'] === true,
    leafHash: asBytes(row['leaf_hash']),
    entry: asText(row['entry']),
  };
}

function checkpointOf(row: Record<string, unknown>): CheckpointRecord {
  return {
    id: asNumber(row['id']),
    treeSize: asNumber(row['tree_size']),
    rootHash: asBytes(row['root_hash']),
    keyId: String(row['key_id']),
    note: String(row['note']),
    issuedAt: asDate(row['issued_at']),
  };
}

const VIEW_COLUMNS =
  'idx, event_id, event_time, event_type, source, subject, actor, key_id, project, job, outcome, pruned, leaf_hash, entry';

/** The ledger on PostgreSQL or PGlite: the same SQL on both. */
export class SqlLedgerStore implements LedgerStore {
  readonly engine: 'pglite' | 'postgres';

  private constructor(private readonly db: Db) {
    this.engine = db.kind;
  }

  /** The connection the ledger runs on, e.g. to check what its role may do. */
  get database(): Db {
    return this.db;
  }

  /**
   * Applies the ledger migrations unless they are all recorded already, so a service running as
   * the insert/select-only role (which may not create tables) starts on a prepared database.
   */
  static async open(db: Db): Promise<SqlLedgerStore> {
    await migrateUnlessApplied(db, auditMigrations);
    return new SqlLedgerStore(db);
  }

  async getMeta(name: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ value: string }>('select value from audit_meta where name = $1', [
      name,
    ]);
    return rows[0]?.value;
  }

  async putMeta(name: string, value: string): Promise<string> {
    await this.db.query(
      'insert into audit_meta (name, value) values ($1, $2) on conflict (name) do nothing',
      [name, value],
    );
    return (await this.getMeta(name)) ?? value;
  }

  async treeSize(): Promise<number> {
    const { rows } = await this.db.query<{ size: unknown }>(
      'select coalesce(max(end_size), 0) as size from audit_node_tiles',
    );
    return asNumber(rows[0]?.size ?? 0);
  }

  async readNodes(ids: readonly NodeId[]): Promise<Uint8Array[]> {
    if (ids.length === 0) return [];
    const positions = ids.map((id) => nodePosition(id.level, id.index));
    const completions = ids.map((id) => completionSize(id.level, id.index));
    const { rows } = await this.db.query<{ ord: unknown; hash: Uint8Array }>(
      // Prepared once per connection, the query runs in about half the server time of the PL/pgSQL
      // function (which copies its rows through a tuplestore). PGlite re-plans every call, so there
      // the function's cached plan is faster.
      this.engine === 'postgres'
        ? READ_NODES_QUERY
        : 'select ord, hash from audit_read_nodes($1::bigint[], $2::bigint[])',
      [positions, completions],
      { name: 'audit_read_nodes' },
    );
    const out: Array<Uint8Array | undefined> = new Array(ids.length);
    for (const row of rows) out[asNumber(row.ord) - 1] = asBytes(row.hash);
    return out.map((hash, i) => {
      if (hash === undefined || hash.length !== HASH_BYTES) {
        const id = ids[i] as NodeId;
        throw new Error(
          `ledger node (level ${id.level}, index ${id.index}) is missing from audit_node_tiles`,
        );
      }
      return hash;
    });
  }

  async existingEventIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await this.db.query<{ event_id: string }>(
      'select event_id from audit_entries where event_id = any($1::text[])',
      [[...ids]],
    );
    return new Set(rows.map((r) => r.event_id));
  }

  async append(rows: readonly EntryRow[], tile: NodeTile): Promise<void> {
    try {
      await this.appendOnce(rows, tile);
    } catch (error) {
      const e = error as { code?: unknown; constraint?: unknown; message?: unknown };
      if (e.code === '23505' && String(e.constraint ?? e.message).includes('event_id')) {
        throw new DuplicateEventError('an event of this batch is already in the ledger');
      }
      throw error;
    }
  }

  private async appendOnce(rows: readonly EntryRow[], tile: NodeTile): Promise<void> {
    await this.db.transaction(async (tx) => {
      // The lock on its own: the next statement then reads the tiles with a snapshot taken after
      // another writer's commit, so a conflict is seen rather than hidden.
      await tx.query('select pg_advisory_xact_lock($1)', [APPEND_LOCK]);
      // In slices: each is serialised on the caller's thread, which may be serving requests, and
      // awaiting the database in between lets them in. The first slice also checks where the log
      // ends and adds the tile, in the same statement: one statement and round trip per group
      // commit instead of three (on the embedded database each costs its thread ~0.3-0.5 ms).
      const current = await insertEntries(tx, rows.slice(0, INSERT_SLICE), tile);
      if (current !== tile.startSize) {
        throw new LedgerConflictError(
          `the ledger ends at ${current}, not ${tile.startSize}: another writer appended; reopen the log`,
        );
      }
      for (let at = INSERT_SLICE; at < rows.length; at += INSERT_SLICE) {
        await insertEntries(tx, rows.slice(at, at + INSERT_SLICE));
      }
    });
  }

  async tiles(start: number, end: number): Promise<NodeTile[]> {
    const { rows } = await this.db.query<{ start_size: unknown; end_size: unknown; hashes: string }>(
      `select start_size, end_size, encode(hashes, 'hex') as hashes from audit_node_tiles
        where end_size > $1 and start_size < $2 order by start_size`,
      [start, end],
    );
    return rows.map((r) => ({
      startSize: asNumber(r.start_size),
      endSize: asNumber(r.end_size),
      hashes: Buffer.from(r.hashes, 'hex'),
    }));
  }

  async saveCheckpoint(checkpoint: Omit<CheckpointRecord, 'id' | 'issuedAt'>): Promise<CheckpointRecord> {
    const { rows } = await this.db.query(
      `insert into audit_checkpoints (tree_size, root_hash, key_id, note) values ($1, $2, $3, $4)
       on conflict (tree_size, key_id) do nothing
       returning id, tree_size, root_hash, key_id, note, issued_at`,
      [checkpoint.treeSize, buffer(checkpoint.rootHash), checkpoint.keyId, checkpoint.note],
    );
    if (rows[0]) return checkpointOf(rows[0]);
    const existing = await this.db.query(
      'select id, tree_size, root_hash, key_id, note, issued_at from audit_checkpoints where tree_size = $1 and key_id = $2',
      [checkpoint.treeSize, checkpoint.keyId],
    );
    if (!existing.rows[0]) throw new Error('a checkpoint could not be stored');
    return checkpointOf(existing.rows[0]);
  }

  async latestCheckpoint(): Promise<CheckpointRecord | undefined> {
    const { rows } = await this.db.query(
      'select id, tree_size, root_hash, key_id, note, issued_at from audit_checkpoints order by id desc limit 1',
    );
    return rows[0] ? checkpointOf(rows[0]) : undefined;
  }

  async checkpointAt(treeSize: number): Promise<CheckpointRecord | undefined> {
    const { rows } = await this.db.query(
      `select id, tree_size, root_hash, key_id, note, issued_at from audit_checkpoints
        where tree_size = $1 order by id desc limit 1`,
      [treeSize],
    );
    return rows[0] ? checkpointOf(rows[0]) : undefined;
  }

  async checkpoints(afterId: number, limit: number): Promise<CheckpointRecord[]> {
    const { rows } = await this.db.query(
      `select id, tree_size, root_hash, key_id, note, issued_at from audit_checkpoints
        where id > $1 order by id limit $2`,
      [afterId, limit],
    );
    return rows.map(checkpointOf);
  }

  async addVerifierKey(key: { keyId: string; verifierKey: string }): Promise<void> {
    await this.db.query(
      'insert into audit_keys (verifier_key, key_id) values ($1, $2) on conflict (verifier_key) do nothing',
      [key.verifierKey, key.keyId],
    );
  }

  async verifierKeys(): Promise<VerifierKeyRecord[]> {
    const { rows } = await this.db.query<{ verifier_key: string; key_id: string; added_at: unknown }>(
      'select verifier_key, key_id, added_at from audit_keys order by added_at desc, verifier_key',
    );
    return rows.map((r) => ({ verifierKey: r.verifier_key, keyId: r.key_id, addedAt: asDate(r.added_at) }));
  }

  async indexOfEvent(eventId: string): Promise<number | undefined> {
    const { rows } = await this.db.query<{ idx: unknown }>(
      'select idx from audit_entries where event_id = $1',
      [eventId],
    );
    return rows[0] ? asNumber(rows[0].idx) : undefined;
  }

  async entryRef(ref: { index: number } | { eventId: string }): Promise<EntryRef | undefined> {
    const byIndex = 'index' in ref;
    const { rows } = await this.db.query<{ idx: unknown; event_id: string; leaf_hash: unknown }>(
      `select idx, event_id, leaf_hash from audit_entries where ${byIndex ? 'idx' : 'event_id'} = $1`,
      [byIndex ? ref.index : ref.eventId],
    );
    const row = rows[0];
    return row
      ? { index: asNumber(row.idx), eventId: row.event_id, leafHash: asBytes(row.leaf_hash) }
      : undefined;
  }

  async entry(index: number): Promise<EntryView | undefined> {
    const { rows } = await this.db.query(`select ${VIEW_COLUMNS} from audit_entries where idx = $1`, [index]);
    return rows[0] ? viewOf(rows[0]) : undefined;
  }

  indexedUpTo(): Promise<number> {
    return this.contiguousUpTo(ATTRIBUTES);
  }

  wordsUpTo(): Promise<number> {
    return this.contiguousUpTo(WORDS);
  }

  private async contiguousUpTo(part: DerivedPart): Promise<number> {
    // The watermark, unless the table lost the entry just below it (emptied to be rebuilt): one
    // row and one key lookup, whatever the size of the log.
    const { rows } = await this.db.query<{ upto: unknown; present: boolean }>(
      `select upto, upto = 0 or exists (select 1 from ${part.table} i where i.idx = p.upto - 1) as present
         from ${part.progress} p`,
    );
    const row = rows[0];
    if (row?.present) return asNumber(row.upto);
    // No watermark yet (a database indexed before there was one) or a stale one: the first gap,
    // found once and written down. Replicas may race to write it: each value is a true first gap
    // or a later contiguous end, so whichever lands last is still one the table holds.
    const next = await this.firstGap(part.table);
    await this.db.query(
      `insert into ${part.progress} (one, upto) values (true, $1)
       on conflict (one) do update set upto = excluded.upto`,
      [next],
    );
    return next;
  }

  /** The first entry missing from a derived table, found by looking at the table itself. */
  private async firstGap(table: string): Promise<number> {
    // The first entry missing, not the highest present: replicas index their own appends, so a
    // replica killed between appending and indexing leaves a gap below later entries. Counting
    // tells whether there is one (a fifth of the cost of looking for it: 0.14 s at 1M on PGlite).
    const { rows } = await this.db.query<{ c: unknown; n: unknown }>(
      `select count(*) as c, coalesce(max(idx) + 1, 0) as n from ${table}`,
    );
    const next = asNumber(rows[0]?.n ?? 0);
    if (asNumber(rows[0]?.c ?? 0) === next) return next;
    const gap = await this.db.query<{ n: unknown }>(
      `select case when not exists (select 1 from ${table} where idx = 0) then 0
              else (select min(i.idx) + 1 from ${table} i
                     where not exists (select 1 from ${table} j where j.idx = i.idx + 1)) end as n`,
    );
    return asNumber(gap.rows[0]?.n ?? 0);
  }

  async indexEntries(from: number, to: number): Promise<void> {
    // One statement, so atomic: the rows and the watermark commit together or not at all. The
    // watermark moves only when the batch starts at or below it (entries below it are all indexed):
    // a replica indexing its own appends above a gap leaves it where it is. The attributes come
    // from the entry's columns; its words are indexed apart (indexWords).
    await this.db.query(
      `with added as (
         insert into audit_index (idx, event_type, actor, key_id, project, job, outcome, pruned)
         select idx, event_type, actor, key_id, project, job, outcome, pruned
           from audit_entries e where idx >= $1 and idx < $2
            and ${missingFrom('audit_index')}
         on conflict (idx) do nothing
       )
       update audit_index_progress set upto = $2 where upto >= $1 and upto < $2`,
      [from, to],
    );
  }

  async indexWords(from: number, to: number): Promise<void> {
    // The words are split on this thread (domain/search-words.ts), not by the database's
    // text-search parser, which cost the embedded database's one thread more than everything else
    // of indexing an entry; entries whose words are in already (another replica) are not read.
    const { rows } = await this.db.query<{ idx: unknown; entry: string }>(
      `select idx, entry from audit_entries e where idx >= $1 and idx < $2 and not pruned
          and ${missingFrom('audit_words')}`,
      [from, to],
    );
    const read = new Map<number, string>();
    for (const row of rows) read.set(asNumber(row.idx), row.entry);
    // Every entry of the range gets a row: those not read (pruned, or in already) none to split.
    const words: Array<{ i: number; w: string }> = [];
    for (let idx = from; idx < to; idx++) {
      // Like an append, a large range is split a slice at a time, letting requests in between.
      if (idx > from && (idx - from) % WORDS_SLICE === 0) await yieldTurn();
      const entry = read.get(idx);
      words.push({ i: idx, w: entry === undefined ? '' : searchWords(entry).join(' ') });
    }
    // Atomic with its watermark like indexEntries. Driven by the words, each entry looked up by
    // its key (a join left to the planner went quadratic on PGlite, see missingFrom); an entry
    // pruned since it was read gets no words.
    await this.db.query(
      `with added as (
         insert into audit_words (idx, search)
         select w.i, case when w.w = '' or (select e.pruned from audit_entries e where e.idx = w.i)
                          then ''::tsvector else array_to_tsvector(string_to_array(w.w, ' ')) end
           from json_to_recordset($3::json) as w(i bigint, w text)
          where ${missingFrom('audit_words', 'w.i')}
         on conflict (idx) do nothing
       )
       update audit_words_progress set upto = $2 where upto >= $1 and upto < $2`,
      [from, to, JSON.stringify(words)],
    );
  }

  async query(options: QueryOptions): Promise<EntryView[]> {
    const indexed = usesIndex(options);
    const conditions = new Conditions([], indexed).add(options);
    const idx = indexed ? 'e.idx' : 'idx';
    if (options.cursor !== undefined) {
      conditions.parts.push(
        `${idx} ${options.order === 'asc' ? '>' : '<'} ${conditions.param(options.cursor)}`,
      );
    }
    const limit = conditions.param(options.limit);
    const from = indexed
      ? `audit_entries e join audit_index i on i.idx = e.idx${options.text ? ' join audit_words w on w.idx = e.idx' : ''}`
      : 'audit_entries';
    const columns = indexed
      ? VIEW_COLUMNS.split(', ')
          .map((c) => `e.${c}`)
          .join(', ')
      : VIEW_COLUMNS;
    const { rows } = await this.db.query(
      `select ${columns} from ${from} where ${conditions.sql()}
        order by ${idx} ${options.order === 'asc' ? 'asc' : 'desc'} limit ${limit}`,
      conditions.params,
    );
    return rows.map(viewOf);
  }

  async bundlePage(start: number, end: number, filter?: EntryFilter): Promise<BundlePage> {
    const page = await this.bundlePageOf(start, end, filter);
    return filter?.text ? withheldByText(page, filter.text) : page;
  }

  /** A bundle page filtered by everything but the text. */
  private async bundlePageOf(start: number, end: number, filter?: EntryFilter): Promise<BundlePage> {
    const params: SqlParam[] = [start, end];
    const filtered = hasFilter(filter);
    const match = filtered ? `coalesce(${new Conditions(params).add(filter).sql()}, false)` : 'true';
    // Fast path: one aggregated row per page (bytea travels as hex text: decoding it is native).
    // Rows are read one by one only when the page is not what the appender writes (a gap, or an
    // entry holding a newline or missing): tampering.
    // Left to the planner (no statistics on PGlite), the ordered aggregates sort the page's wide
    // rows, which spills to disk past work_mem: made to read the primary key in order instead
    // (PostgreSQL 16+, PGlite), else to sort in memory (PostgreSQL 15 sorts inside the aggregate).
    const { rows } = await this.db.transaction(async (tx) => {
      await tx.query("select set_config('enable_sort', 'off', true), set_config('work_mem', '64MB', true)");
      return tx.query<{
        n: unknown;
        lo: unknown;
        hi: unknown;
        lines: string | null;
        hashes: string | null;
        matched: string | null;
        pruned: unknown;
      }>(
        `select count(*) as n, min(idx) as lo, max(idx) as hi,
              string_agg(case when pruned or not ${match} then ${MARKER_SQL} else entry end, E'\\n' order by idx) as lines,
              string_agg(encode(leaf_hash, 'hex'), '' order by idx) as hashes,
              ${filtered ? `string_agg(case when not pruned and ${match} then idx::text end, ',' order by idx)` : 'null'} as matched,
              count(*) filter (where pruned) as pruned
         from audit_entries where idx >= $1 and idx < $2`,
        params,
      );
    });
    const row = rows[0];
    const n = asNumber(row?.n ?? 0);
    if (n === 0)
      return { start, lines: [], indexes: [], leafHashes: new Uint8Array(0), matched: [], pruned: 0 };
    const lines = (row?.lines ?? '').split('\n');
    const contiguous = asNumber(row?.lo) === start && asNumber(row?.hi) === start + n - 1;
    const leafHashes = Buffer.from(row?.hashes ?? '', 'hex');
    if (!contiguous || lines.length !== n || leafHashes.length !== n * HASH_BYTES) {
      return this.bundlePageByRow(start, end, filter);
    }
    const indexes = Array.from({ length: n }, (_, i) => start + i);
    const pruned = asNumber(row?.pruned);
    let matched: number[];
    if (filtered) matched = row?.matched ? row.matched.split(',').map(Number) : [];
    else if (pruned === 0) matched = indexes;
    else matched = indexes.filter((_, i) => prunedLeafHashLine(lines[i] ?? '') === false);
    return { start, lines, indexes, leafHashes, matched, pruned };
  }

  private async bundlePageByRow(start: number, end: number, filter?: EntryFilter): Promise<BundlePage> {
    const params: SqlParam[] = [start, end];
    const match = hasFilter(filter) ? new Conditions(params).add(filter).sql() : 'true';
    const { rows } = await this.db.query<{
      idx: unknown;
      pruned: boolean;
      leaf_hash: Uint8Array;
      entry: string | null;
      matched: boolean;
    }>(
      `select idx, pruned, leaf_hash, entry, coalesce(${match}, false) as matched
         from audit_entries where idx >= $1 and idx < $2 order by idx`,
      params,
    );
    const leafHashes = new Uint8Array(rows.length * HASH_BYTES);
    const lines: string[] = [];
    const matched: number[] = [];
    let pruned = 0;
    rows.forEach((row, i) => {
      const hash = asBytes(row.leaf_hash);
      if (hash.length === HASH_BYTES) leafHashes.set(hash, i * HASH_BYTES);
      if (row.pruned) pruned++;
      if (row.pruned || !row.matched) lines.push(markerOf(hash));
      else {
        lines.push(row.entry ?? '');
        matched.push(asNumber(row.idx));
      }
    });
    return { start, lines, indexes: rows.map((r) => asNumber(r.idx)), leafHashes, matched, pruned };
  }

  async stats(): Promise<LedgerStats> {
    const [types, coverage, checkpoints, prunings, size, guards] = await Promise.all([
      this.db.query<{ event_type: string; n: unknown; pruned: unknown; first: unknown; last: unknown }>(
        `select event_type, count(*) as n, count(*) filter (where pruned) as pruned,
                min(event_time) as first, max(event_time) as last
           from audit_entries group by event_type order by event_type`,
      ),
      this.db.query<{ with_actor: unknown; with_key: unknown }>(
        `select count(*) filter (where actor is not null) as with_actor,
                count(*) filter (where key_id is not null) as with_key from audit_entries`,
      ),
      this.db.query<{ n: unknown; first: unknown; last: unknown }>(
        'select count(*) as n, min(issued_at) as first, max(issued_at) as last from audit_checkpoints',
      ),
      this.db.query<{ n: unknown }>('select count(*) as n from audit_prunings'),
      this.treeSize(),
      this.db.query<{ name: string }>(
        `select t.tgname as name from pg_trigger t join pg_class c on c.oid = t.tgrelid
          where not t.tgisinternal and t.tgenabled <> 'D' and c.oid = any($1::regclass[]) order by 1`,
        [LEDGER_TABLES.map((t) => t)],
      ),
    ]);
    const byType = types.rows.map((r) => ({
      type: r.event_type,
      count: asNumber(r.n),
      pruned: asNumber(r.pruned),
      first: r.first === null ? null : asDate(r.first),
      last: r.last === null ? null : asDate(r.last),
    }));
    const dates = (pick: (t: (typeof byType)[number]) => Date | null): Date[] =>
      byType.map(pick).filter((d): d is Date => d !== null);
    const firsts = dates((t) => t.first);
    const lasts = dates((t) => t.last);
    return {
      treeSize: size,
      entries: byType.reduce((sum, t) => sum + t.count, 0),
      pruned: byType.reduce((sum, t) => sum + t.pruned, 0),
      firstEvent: firsts.length ? new Date(Math.min(...firsts.map((d) => d.getTime()))) : null,
      lastEvent: lasts.length ? new Date(Math.max(...lasts.map((d) => d.getTime()))) : null,
      byType,
      withActor: asNumber(coverage.rows[0]?.with_actor ?? 0),
      withKey: asNumber(coverage.rows[0]?.with_key ?? 0),
      checkpoints: asNumber(checkpoints.rows[0]?.n ?? 0),
      firstCheckpointAt: checkpoints.rows[0]?.first ? asDate(checkpoints.rows[0].first) : null,
      lastCheckpointAt: checkpoints.rows[0]?.last ? asDate(checkpoints.rows[0].last) : null,
      prunings: asNumber(prunings.rows[0]?.n ?? 0),
      guards: guards.rows.map((r) => r.name),
    };
  }

  async typesWithContent(): Promise<string[]> {
    // A loose index scan over audit_index_content: one probe per distinct type.
    const { rows } = await this.db.query<{ event_type: string | null }>(
      `with recursive t(event_type) as (
         (select event_type from audit_index where not pruned order by event_type limit 1)
         union all
         select (select i.event_type from audit_index i where not i.pruned and i.event_type > t.event_type
                  order by i.event_type limit 1)
           from t where t.event_type is not null
       ) select event_type from t where event_type is not null`,
    );
    return rows.map((r) => r.event_type).filter((t): t is string => t !== null);
  }

  async prune(type: string, before: Date, through: number, actor: string): Promise<number> {
    const { rows } = await this.db.query<{ n: unknown }>('select audit_prune($1, $2, $3, $4) as n', [
      type,
      before,
      through,
      actor,
    ]);
    return asNumber(rows[0]?.n ?? 0);
  }
}

/** The entries' rows as one INSERT; with `tile`, see insertEntries. */
function entriesInsert(rows: readonly EntryRow[], guarded: boolean): { sql: string; params: SqlParam[] } {
  // The short columns travel as one JSON array: parsed once by json_to_recordset, it binds at
  // about half the cost of a text[] per column on PGlite, and JSON.stringify escapes any value.
  // Entries never contain a newline (canonical JSON), so they travel as one joined string: far
  // cheaper to bind than a text[] of large values. ROWS FROM pairs the two row by row.
  const columns = JSON.stringify(
    rows.map((r) => ({
      idx: r.index,
      id: r.eventId,
      hash: Buffer.from(r.leafHash).toString('hex'),
      t: r.time,
      ty: r.type,
      src: r.source,
      sub: r.subject,
      act: r.actor,
      k: r.keyId,
      p: r.project,
      j: r.job,
      o: r.outcome,
    })),
  );
  return {
    sql: `insert into audit_entries
       (idx, event_id, leaf_hash, event_time, event_type, source, subject, actor, key_id, project, job, outcome, entry)
     select u.idx, u.id, decode(u.hash, 'hex'), u.t::timestamptz, u.ty, u.src, u.sub, u.act, u.k, u.p, u.j, u.o, u.entry
       from rows from (
         json_to_recordset($1::json) as (idx bigint, id text, hash text, t text, ty text, src text, sub text,
                                         act text, k text, p text, j text, o text),
         unnest(string_to_array($2, E'\\n'))
       ) as u(idx, id, hash, t, ty, src, sub, act, k, p, j, o, entry)${guarded ? ', cur where cur.size = $3::bigint' : ''}`,
    params: [columns, rows.map((r) => r.entry).join('\n')],
  };
}

/**
 * Inserts entries. With `tile`, the same statement first reads where the log ends and, only when
 * that is the tile's start, inserts the entries and the tile (every part of a statement sees the
 * tiles as they were before it): it returns where the log ended.
 */
async function insertEntries(tx: Queryable, rows: readonly EntryRow[], tile?: NodeTile): Promise<number> {
  const { sql, params } = entriesInsert(rows, tile !== undefined);
  if (!tile) {
    await tx.query(sql, params);
    return 0;
  }
  const { rows: found } = await tx.query<{ size: unknown }>(
    `with cur as (select coalesce(max(end_size), 0) as size from audit_node_tiles),
     tile as (
       insert into audit_node_tiles (start_size, end_size, node_base, hashes)
       select $3::bigint, $4::bigint, $5::bigint, decode($6, 'hex') from cur where cur.size = $3::bigint
     ),
     entries as (${sql})
     select size from cur`,
    // Hex text binds several times faster than a bytea parameter on PGlite.
    [
      ...params,
      tile.startSize,
      tile.endSize,
      nodesBefore(tile.startSize),
      buffer(tile.hashes).toString('hex'),
    ],
  );
  return asNumber(found[0]?.size ?? 0);
}

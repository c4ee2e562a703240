import { createEvent } from '@flowloom/contracts';
import { migrate } from '@flowloom/store';
import { afterEach, describe, expect, it } from 'vitest';
import { auditMigrations } from '../src/adapters/migrations.js';
import { SqlLedgerStore } from '../src/adapters/sql-ledger-store.js';
import type { TestDatabase } from './databases.js';
import { COMPLETED, ENGINES, ledgerPerTest, openTestDatabase } from './support.js';

// The index holds the words split by the service (domain/search-words.ts); an index written
// before that holds the words of the database's own text-search parser. Queries find both.

const event = (i: number, note: string, at = new Date()) =>
  createEvent(COMPLETED, 'flowloom/gateway', { requestId: `r-${i}`, note }, `key/${i}`, at.getTime());

const OLD = new Date('2001-01-01T00:00:00Z');

describe.each(ENGINES)('full-text search on %s', (engine) => {
  const openLedger = ledgerPerTest();

  it('when entries were indexed by the database parser before, then a query still finds them by the same text', async () => {
    const t = await openLedger(engine);
    const old = event(0, 'shipped release v1.2.3 to prod');
    await t.ledger.append([old]);
    // Words as the previous indexer wrote them (moved to audit_words by the migration), and their watermark.
    await t.store.database.query(
      `insert into audit_words (idx, search)
       select idx, json_to_tsvector('simple', entry::json, '["string"]') from audit_entries`,
    );
    await t.store.database.query('update audit_words_progress set upto = 1');
    const fresh = event(1, 'shipped release v1.2.3 to staging');
    await t.ledger.append([fresh]);

    const ids = async (text: string) =>
      (await t.ledger.query({ text, limit: 10, order: 'asc' })).map((e) => e.eventId);
    expect(await ids('v1.2.3')).toEqual([old.id, fresh.id]);
    expect(await ids('release PROD')).toEqual([old.id]);
    expect(await ids('staging')).toEqual([fresh.id]);
    expect(await ids('v1.2.4')).toEqual([]);
  });

  it('when entries were indexed with their UUIDs split in five before, then a query for a whole UUID finds them and the new ones', async () => {
    const t = await openLedger(engine);
    const id = '6f1c2b7e-1d2a-4c3b-9e8f-0a1b2c3d4e5f';
    const old = event(0, `retried ${id}`);
    await t.ledger.append([old]);
    // Words as the indexer split them before: at every hyphen, the UUID's too.
    const split = (text: string) =>
      text
        .toLowerCase()
        .split(/[^\p{L}\p{M}\p{N}]+/u)
        .filter(Boolean);
    const entry = JSON.parse(
      (await t.store.database.query<{ entry: string }>('select entry from audit_entries')).rows[0]!.entry,
    ) as { data: Record<string, string>; [k: string]: unknown };
    const oldWords = [
      ...new Set([...Object.values(entry.data), entry.id, entry.subject].flatMap((v) => split(String(v)))),
    ];
    await t.store.database.query(
      'insert into audit_words (idx, search) values (0, array_to_tsvector($1::text[]))',
      [oldWords],
    );
    await t.store.database.query('update audit_words_progress set upto = 1');
    const fresh = event(1, `retried ${id.toUpperCase()} again`);
    await t.ledger.append([fresh]);

    const ids = async (text: string) =>
      (await t.ledger.query({ text, limit: 10, order: 'asc' })).map((e) => e.eventId);
    expect(await ids(id)).toEqual([old.id, fresh.id]);
    expect(await ids(`again ${id.toUpperCase()}`)).toEqual([fresh.id]);
    // The new entry holds the UUID whole: a piece of it is no longer a word of its own.
    expect(await ids('1d2a')).toEqual([old.id]);
    const { rows } = await t.store.database.query<{ search: string }>(
      'select search::text as search from audit_words where idx = 1',
    );
    expect(rows[0]?.search).toContain(`'${id}'`);
  });

  it('when the attributes are indexed and the words not yet, then a filter does not wait for words and a text query brings them up to date', async () => {
    const t = await openLedger(engine);
    const events = [0, 1, 2].map((i) => event(i, `note ${i} quokka`));
    await t.ledger.append(events);

    expect(await t.ledger.query({ type: COMPLETED, limit: 10, order: 'asc' })).toHaveLength(3);
    expect(t.ledger.indexBacklog).toBe(0);
    expect(t.ledger.wordsBacklog).toBe(events.length);

    const found = await t.ledger.query({ text: 'quokka', limit: 10, order: 'asc' });
    expect(found.map((e) => e.eventId)).toEqual(events.map((e) => e.id));
    expect(t.ledger.wordsBacklog).toBe(0);
  });

  it('when a text search through the API cannot wait for words behind, then it answers from what is searchable and says how many it did not cover', async () => {
    const t = await openLedger(engine);
    const early = [0, 1].map((i) => event(i, `note ${i} numbat`));
    await t.ledger.append(early);
    await t.ledger.catchUpWords();
    const late = [2, 3, 4].map((i) => event(i, `note ${i} numbat`));
    await t.ledger.append(late);

    // No time to wait: the words of the three newest entries are not indexed.
    const hurried = await t.ledger.search({ text: 'numbat', limit: 10, order: 'asc' }, 0);
    expect(hurried.entries.map((e) => e.eventId)).toEqual(early.map((e) => e.id));
    expect(hurried.notSearched).toBe(late.length);
    // Filters never miss an entry, and say nothing is left out.
    const filtered = await t.ledger.search({ type: COMPLETED, limit: 10, order: 'asc' }, 0);
    expect(filtered.entries).toHaveLength(5);
    expect(filtered.notSearched).toBe(0);

    // With the default wait the words catch up first: every entry, nothing left out.
    const patient = await t.ledger.search({ text: 'numbat', limit: 10, order: 'asc' });
    expect(patient.entries.map((e) => e.eventId)).toEqual([...early, ...late].map((e) => e.id));
    expect(patient.notSearched).toBe(0);
  });

  it('when an export is filtered by text, then it withholds exactly the entries a query with that text does not find', async () => {
    const t = await openLedger(engine);
    const notes = [
      'deployed to eu-west-1 with gpt-4o-mini',
      'tier-2 customer escalated',
      'header x-tier-2 seen',
      'cost 1.5 usd',
      'mail ops@example.com about it',
      'Grüße aus München',
      'retried 6F1C2B7E-1D2A-4C3B-9E8F-0A1B2C3D4E5F twice',
    ];
    const events = notes.map((note, i) => event(i, note));
    await t.ledger.append(events);
    const size = t.ledger.size;
    for (const text of [
      'west-1',
      'tier-2',
      'x-tier',
      '1.5',
      'example.com',
      'ops@example.com',
      'GPT-4o',
      'münchen',
      '6f1c2b7e-1d2a-4c3b-9e8f-0a1b2c3d4e5f',
      '1d2a',
      'retried 6F1C2B7E-1d2a-4c3b-9e8f-0a1b2c3d4e5f',
      '!!!',
    ]) {
      const found = (await t.ledger.query({ text, limit: 100, order: 'asc' })).map((e) => e.eventId);
      const page = await t.store.bundlePage(0, size, { text });
      const exported = page.matched.map((i) => (JSON.parse(page.lines[i] ?? '{}') as { id: string }).id);
      expect({ text, exported }).toEqual({ text, exported: found });
    }
    // Withheld entries are markers of their leaf hash, so the bundle still verifies.
    const page = await t.store.bundlePage(0, size, { text: 'tier-2' });
    expect(page.matched).toEqual([1, 2]);
    page.lines.forEach((line, i) => {
      if (!page.matched.includes(i))
        expect(line).toBe(
          `{"$pruned":"${Buffer.from(page.leafHashes.subarray(i * 32, (i + 1) * 32)).toString('hex')}"}`,
        );
    });
  });

  it('when retention prunes entries, then text no longer finds them, whether their words were indexed before or after', async () => {
    const t = await openLedger(engine);
    const before = [0, 1].map((i) => event(i, 'wombat sighting', OLD));
    await t.ledger.append(before);
    await t.ledger.catchUpWords();
    const after = [2, 3].map((i) => event(i, 'wombat sighting', OLD));
    const kept = event(4, 'wombat sighting');
    await t.ledger.append([...after, kept]);
    await t.ledger.checkpoint();
    expect(t.ledger.wordsBacklog).toBe(3);

    expect(await t.ledger.applyRetention([{ pattern: COMPLETED, days: 1 }])).toEqual([
      expect.objectContaining({ pruned: 4 }),
    ]);
    const found = await t.ledger.query({ text: 'wombat', limit: 10, order: 'asc' });
    expect(found.map((e) => e.eventId)).toEqual([kept.id]);
    const { rows } = await t.store.database.query<{ n: unknown }>(
      "select count(*) as n from audit_words where search <> ''::tsvector and idx < 4",
    );
    expect(Number(rows[0]?.n)).toBe(0);
  });
});

describe.each(ENGINES)('the words index, migrated, on %s', (engine) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.drop();
    database = undefined;
  });

  it('when the database is migrated, then the words indexed so far and their watermark move over', async () => {
    database = await openTestDatabase(engine);
    const { db } = database;
    const before = auditMigrations.findIndex((m) => m.id === 'audit/005_search_words_apart');
    await migrate(db, auditMigrations.slice(0, before));
    await db.query(
      `insert into audit_index (idx, event_type, pruned, search) values
         (0, 'x', false, array_to_tsvector('{quokka,one}')),
         (1, 'x', true, ''::tsvector),
         (2, 'x', false, array_to_tsvector('{quokka,two}'))`,
    );
    await db.query('insert into audit_index_progress (one, upto) values (true, 3)');

    const store = await SqlLedgerStore.open(db);
    const { rows } = await db.query<{ idx: unknown; search: string }>(
      'select idx, search::text as search from audit_words order by idx',
    );
    expect(rows.map((r) => [Number(r.idx), r.search])).toEqual([
      [0, "'one' 'quokka'"],
      [1, ''],
      [2, "'quokka' 'two'"],
    ]);
    expect(await store.wordsUpTo()).toBe(3);
    const indexes = await db.query<{ name: string }>(
      "select indexname as name from pg_indexes where tablename = 'audit_index' and indexname = 'audit_index_search' and schemaname = current_schema()",
    );
    expect(indexes.rows).toEqual([]);
  });

  it('when the database is migrated, then new words wait in a pending list of at most 1 MB before they are merged', async () => {
    database = await openTestDatabase(engine);
    await SqlLedgerStore.open(database.db);
    const { rows } = await database.db.query<{ options: string[] | string | null }>(
      "select c.reloptions as options from pg_class c where c.relname = 'audit_words_search' and c.relnamespace = current_schema()::regnamespace",
    );
    expect(String(rows[0]?.options)).toContain('gin_pending_list_limit=1024');
  });
});

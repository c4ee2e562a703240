import { describe, expect, it } from 'vitest';
import type { AuditLedger } from '../src/app/ledger.js';
import { ENGINES, type Engine, ledgerPerTest, requestEvent, type TestLedger } from './support.js';

// Each part of the search index (attributes in audit_index, words in audit_words) records how far
// it is contiguous, in the statement that indexes each batch, so a start resumes from one row
// instead of counting the table. The row is a shortcut, never the truth: without it, or when the
// table lost what it claims, the start looks for the first gap in the table itself.

interface Part {
  readonly table: string;
  readonly progress: string;
  build(t: TestLedger, from: number, to: number): Promise<void>;
  backlog(ledger: AuditLedger): number;
  /** Every entry a query through this part finds, in order (the query brings it up to date first). */
  found(ledger: AuditLedger): Promise<string[]>;
}

const PARTS: ReadonlyArray<[string, Part]> = [
  [
    'attributes',
    {
      table: 'audit_index',
      progress: 'audit_index_progress',
      build: (t, from, to) => t.store.indexEntries(from, to),
      backlog: (ledger) => ledger.indexBacklog,
      found: async (ledger) =>
        (await ledger.query({ project: 'p', limit: 100, order: 'asc' })).map((e) => e.eventId),
    },
  ],
  [
    'words',
    {
      table: 'audit_words',
      progress: 'audit_words_progress',
      build: (t, from, to) => t.store.indexWords(from, to),
      backlog: (ledger) => ledger.wordsBacklog,
      found: async (ledger) =>
        (await ledger.query({ text: 'openai', limit: 100, order: 'asc' })).map((e) => e.eventId),
    },
  ],
];

const CASES: ReadonlyArray<[Engine, string, Part]> = ENGINES.flatMap((engine) =>
  PARTS.map(([name, part]): [Engine, string, Part] => [engine, name, part]),
);

const events = Array.from({ length: 10 }, (_, i) => requestEvent(i, { project: 'p' }));

describe.each(CASES)('the search index watermark on %s (%s)', (engine, _name, part) => {
  const openLedger = ledgerPerTest();

  const watermark = async (t: TestLedger): Promise<number | undefined> => {
    const { rows } = await t.store.database.query<{ upto: unknown }>(`select upto from ${part.progress}`);
    return rows[0] === undefined ? undefined : Number(rows[0].upto);
  };

  const indexedRows = async (t: TestLedger): Promise<number[]> => {
    const { rows } = await t.store.database.query<{ idx: unknown }>(
      `select idx from ${part.table} order by idx`,
    );
    return rows.map((r) => Number(r.idx));
  };

  it('when batches are indexed, then the watermark follows them and a restart resumes from it', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    expect(await watermark(t)).toBe(0);
    await part.build(t, 0, 4);
    await part.build(t, 4, 6);
    expect(await watermark(t)).toBe(6);

    // A lower watermark than the index holds is still a true one, and the start takes it as it is:
    // it read the row, not the index (the index would say 6).
    await t.store.database.query(`update ${part.progress} set upto = 2`);
    const restarted = await t.reopen();
    expect(part.backlog(restarted)).toBe(events.length - 2);
    expect(await part.found(restarted)).toEqual(events.map((e) => e.id));
    expect(await watermark(t)).toBe(events.length);
  });

  it('when a replica indexes its own entries above a gap, then the watermark stays below the gap', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    await part.build(t, 0, 3);
    await part.build(t, 5, 8);
    expect(await watermark(t)).toBe(3);

    const restarted = await t.reopen();
    expect(part.backlog(restarted)).toBe(events.length - 3);
    expect(await part.found(restarted)).toEqual(events.map((e) => e.id));
    expect(await indexedRows(t)).toEqual(events.map((_, i) => i));
  });

  it('when there is no watermark (an index from before it), then the start finds the first gap and writes it down', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    await part.build(t, 0, 4);
    await part.build(t, 6, 8);
    await t.store.database.query(`delete from ${part.progress}`);

    const restarted = await t.reopen();
    expect(part.backlog(restarted)).toBe(events.length - 4);
    expect(await watermark(t)).toBe(4);
    expect(await part.found(restarted)).toEqual(events.map((e) => e.id));
  });

  it('when the index was emptied to be rebuilt, then the start does not trust the watermark and indexes from the start', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    await part.build(t, 0, events.length);
    await t.store.database.query(`delete from ${part.table}`);

    const restarted = await t.reopen();
    expect(part.backlog(restarted)).toBe(events.length);
    expect(await part.found(restarted)).toEqual(events.map((e) => e.id));
  });

  it('when indexing fails part way through a batch, then neither its rows nor the watermark are kept, and a restart indexes every entry', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    await part.build(t, 0, 3);
    // A failure in the middle of the next batch (a crash would leave the same: nothing of it).
    await t.store.database.exec(`
      create function audit_test_fail() returns trigger language plpgsql as $$
      begin
        if new.idx = 5 then raise exception 'index write failed'; end if;
        return new;
      end $$;
      create trigger audit_test_fail before insert on ${part.table} for each row execute function audit_test_fail();
    `);
    await expect(part.build(t, 3, 8)).rejects.toThrow(/index write failed/);
    expect(await watermark(t)).toBe(3);
    expect(await indexedRows(t)).toEqual([0, 1, 2]);

    await t.store.database.exec(
      `drop trigger audit_test_fail on ${part.table}; drop function audit_test_fail()`,
    );
    const restarted = await t.reopen();
    expect(part.backlog(restarted)).toBe(events.length - 3);
    expect(await part.found(restarted)).toEqual(events.map((e) => e.id));
    expect(await watermark(t)).toBe(events.length);
  });
});

import { describe, expect, it } from 'vitest';
import type { AuditLedger } from '../src/app/ledger.js';
import { ENGINES, ledgerPerTest, requestEvent, type TestLedger } from './support.js';

// The search index records how far it is contiguous (audit_index_progress), in the statement that
// indexes each batch, so a start resumes from one row instead of counting the index. The row is a
// shortcut, never the truth: without it, or when the index lost what it claims, the start looks
// for the first gap in the index itself.

const watermark = async (t: TestLedger): Promise<number | undefined> => {
  const { rows } = await t.store.database.query<{ upto: unknown }>('select upto from audit_index_progress');
  return rows[0] === undefined ? undefined : Number(rows[0].upto);
};

const indexedRows = async (t: TestLedger): Promise<number[]> => {
  const { rows } = await t.store.database.query<{ idx: unknown }>('select idx from audit_index order by idx');
  return rows.map((r) => Number(r.idx));
};

/** Every entry a query finds, in order (the query brings the index up to date first). */
const found = async (ledger: AuditLedger): Promise<string[]> =>
  (await ledger.query({ project: 'p', limit: 100, order: 'asc' })).map((e) => e.eventId);

const events = Array.from({ length: 10 }, (_, i) => requestEvent(i, { project: 'p' }));

describe.each(ENGINES)('the search index watermark on %s', (engine) => {
  const openLedger = ledgerPerTest();

  it('when batches are indexed, then the watermark follows them and a restart resumes from it', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    expect(await watermark(t)).toBe(0);
    await t.store.indexEntries(0, 4);
    await t.store.indexEntries(4, 6);
    expect(await watermark(t)).toBe(6);

    // A lower watermark than the index holds is still a true one, and the start takes it as it is:
    // it read the row, not the index (the index would say 6).
    await t.store.database.query('update audit_index_progress set upto = 2');
    const restarted = await t.reopen();
    expect(restarted.indexBacklog).toBe(events.length - 2);
    expect(await found(restarted)).toEqual(events.map((e) => e.id));
    expect(await watermark(t)).toBe(events.length);
  });

  it('when a replica indexes its own entries above a gap, then the watermark stays below the gap', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    await t.store.indexEntries(0, 3);
    await t.store.indexEntries(5, 8);
    expect(await watermark(t)).toBe(3);

    const restarted = await t.reopen();
    expect(restarted.indexBacklog).toBe(events.length - 3);
    expect(await found(restarted)).toEqual(events.map((e) => e.id));
    expect(await indexedRows(t)).toEqual(events.map((_, i) => i));
  });

  it('when there is no watermark (an index from before it), then the start finds the first gap and writes it down', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    await t.store.indexEntries(0, 4);
    await t.store.indexEntries(6, 8);
    await t.store.database.query('delete from audit_index_progress');

    const restarted = await t.reopen();
    expect(restarted.indexBacklog).toBe(events.length - 4);
    expect(await watermark(t)).toBe(4);
    expect(await found(restarted)).toEqual(events.map((e) => e.id));
  });

  it('when the index was emptied to be rebuilt, then the start does not trust the watermark and indexes from the start', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    await t.store.indexEntries(0, events.length);
    await t.store.database.query('delete from audit_index');

    const restarted = await t.reopen();
    expect(restarted.indexBacklog).toBe(events.length);
    expect(await found(restarted)).toEqual(events.map((e) => e.id));
  });

  it('when indexing fails part way through a batch, then neither its rows nor the watermark are kept, and a restart indexes every entry', async () => {
    const t = await openLedger(engine);
    await t.ledger.append(events);
    await t.store.indexEntries(0, 3);
    // A failure in the middle of the next batch (a crash would leave the same: nothing of it).
    await t.store.database.exec(`
      create function audit_test_fail() returns trigger language plpgsql as $$
      begin
        if new.idx = 5 then raise exception 'index write failed'; end if;
        return new;
      end $$;
      create trigger audit_test_fail before insert on audit_index for each row execute function audit_test_fail();
    `);
    await expect(t.store.indexEntries(3, 8)).rejects.toThrow(/index write failed/);
    expect(await watermark(t)).toBe(3);
    expect(await indexedRows(t)).toEqual([0, 1, 2]);

    await t.store.database.exec(
      'drop trigger audit_test_fail on audit_index; drop function audit_test_fail()',
    );
    const restarted = await t.reopen();
    expect(restarted.indexBacklog).toBe(events.length - 3);
    expect(await found(restarted)).toEqual(events.map((e) => e.id));
    expect(await watermark(t)).toBe(events.length);
  });
});

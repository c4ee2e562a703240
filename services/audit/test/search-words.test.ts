import { createEvent } from '@flowloom/contracts';
import { describe, expect, it } from 'vitest';
import { COMPLETED, ENGINES, ledgerPerTest } from './support.js';

// The index holds the words split by the service (domain/search-words.ts); an index written
// before that holds the words of the database's own text-search parser. Queries find both.

const event = (i: number, note: string) =>
  createEvent(COMPLETED, 'flowloom/gateway', { requestId: `r-${i}`, note }, `key/${i}`);

describe.each(ENGINES)('full-text search on %s', (engine) => {
  const openLedger = ledgerPerTest();

  it('when entries were indexed by the database parser before, then a query still finds them by the same text', async () => {
    const t = await openLedger(engine);
    const old = event(0, 'shipped release v1.2.3 to prod');
    await t.ledger.append([old]);
    // An index row as the previous indexer wrote it, and its watermark.
    await t.store.database.query(
      `insert into audit_index (idx, event_type, actor, key_id, project, job, outcome, pruned, search)
       select idx, event_type, actor, key_id, project, job, outcome, pruned,
              json_to_tsvector('simple', entry::json, '["string"]') from audit_entries`,
    );
    await t.store.database.query('update audit_index_progress set upto = 1');
    const fresh = event(1, 'shipped release v1.2.3 to staging');
    await t.ledger.append([fresh]);

    const ids = async (text: string) =>
      (await t.ledger.query({ text, limit: 10, order: 'asc' })).map((e) => e.eventId);
    expect(await ids('v1.2.3')).toEqual([old.id, fresh.id]);
    expect(await ids('release PROD')).toEqual([old.id]);
    expect(await ids('staging')).toEqual([fresh.id]);
    expect(await ids('v1.2.4')).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import type { AuditLedger } from '../src/app/ledger.js';
import { ENGINES, ledgerPerTest, requestEvent } from './support.js';

// Audit replicas share one log and one search index, and each indexes what it appended itself.
// A query through each replica must still find every committed entry: those another replica has
// not indexed yet, and those a replica killed between appending and indexing never indexed.

const projectEntries = async (ledger: AuditLedger, project: string): Promise<string[]> =>
  (await ledger.query({ project, limit: 100, order: 'asc' })).map((e) => e.eventId);

describe.each(ENGINES)('search across replicas on %s', (engine) => {
  const openLedger = ledgerPerTest();

  it('when another replica appended and has not indexed yet, then a query through this one finds its entries', async () => {
    const t = await openLedger(engine);
    const reader = t.ledger;
    await reader.append([requestEvent(0, { project: 'reader' })]);
    const writer = await t.reopen();
    const events = [1, 2, 3].map((i) => requestEvent(i, { project: 'writer' }));
    await writer.append(events);

    expect(await projectEntries(reader, 'writer')).toEqual(events.map((e) => e.id));
  });

  it('when a replica was killed between appending and indexing, then a replica started later indexes what it left', async () => {
    const t = await openLedger(engine);
    const killed = t.ledger;
    const lost = [0, 1].map((i) => requestEvent(i, { project: 'lost' }));
    await killed.append(lost);
    // Another replica appends after it and indexes only its own entries, leaving a gap below them.
    const survivor = await t.reopen();
    const from = survivor.size;
    await survivor.append([requestEvent(2, { project: 'survivor' })]);
    await t.store.indexEntries(from, survivor.size);

    const started = await t.reopen();
    expect(await projectEntries(started, 'lost')).toEqual(lost.map((e) => e.id));
    expect(await projectEntries(started, 'survivor')).toHaveLength(1);
  });
});

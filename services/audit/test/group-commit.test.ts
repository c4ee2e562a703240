import { describe, expect, it } from 'vitest';
import { ENGINES, ledgerPerTest, requestEvent, type TestLedger } from './support.js';

// Group commit: appends that arrive while a transaction runs share the next one. Counted where
// the database itself records it: every append transaction writes exactly one row of
// audit_node_tiles (the tree nodes it added, from start_size to end_size), so the tiles are the
// transactions and their spans the batch sizes. No timing is asserted.

const CALLS = 400;

describe.each(ENGINES)('group commit on %s', (engine) => {
  const openLedger = ledgerPerTest();

  const batchSizes = async (ledger: TestLedger): Promise<number[]> =>
    (await ledger.store.tiles(0, ledger.ledger.size)).map((tile) => tile.endSize - tile.startSize);

  it('when appends come one after another, then each is a transaction of its own (the count is exact)', async () => {
    const t = await openLedger(engine);
    for (let i = 0; i < 5; i++) await t.ledger.append([requestEvent(i)]);
    expect(await batchSizes(t)).toEqual([1, 1, 1, 1, 1]);
  });

  it(`when ${CALLS} appends of one event run concurrently, then they commit in a handful of transactions and each resolves durable`, async () => {
    const t = await openLedger(engine);
    const ledger = t.ledger;
    const outcomes = await Promise.all(
      Array.from({ length: CALLS }, (_, i) => ledger.append([requestEvent(i)])),
    );
    expect(outcomes.every((o) => o.appended === 1 && o.duplicates === 0)).toBe(true);
    const sizes = await batchSizes(t);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(CALLS);
    // The first call commits alone; the others queue behind it and go together.
    expect(sizes.length).toBeLessThanOrEqual(5);
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(CALLS / 2);
    // Durable, in the table, not only in memory.
    expect(await t.store.treeSize()).toBe(CALLS);
  });

  it('when a batch would exceed maxBatch, then it is split at maxBatch entries per transaction', async () => {
    const t = await openLedger(engine, { maxBatch: 64 });
    const ledger = t.ledger;
    await Promise.all(Array.from({ length: CALLS }, (_, i) => ledger.append([requestEvent(i)])));
    const sizes = await batchSizes(t);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(CALLS);
    expect(Math.max(...sizes)).toBe(64);
    expect(sizes.length).toBeLessThanOrEqual(Math.ceil(CALLS / 64) + 2);
  });
});

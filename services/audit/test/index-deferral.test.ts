import { describe, expect, it, vi } from 'vitest';
import type { LedgerStore } from '../src/ports/ledger-store.js';
import { ledgerPerTest, requestEvent } from './support.js';

// The search index is derived; the entries are the evidence. While appends are waiting for the
// database, the background indexer keeps out of their way, and it catches up once they are done.

/** The store with its appends held at a gate the test opens. */
function gatedStore(store: LedgerStore): {
  store: LedgerStore;
  close(): void;
  open(): void;
  indexed: number[];
} {
  let gate: Promise<void> = Promise.resolve();
  let release = (): void => {};
  const indexed: number[] = [];
  const gated = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'append') {
        return async (...args: Parameters<LedgerStore['append']>) => {
          await gate;
          return target.append(...args);
        };
      }
      if (property === 'indexEntries') {
        return (from: number, to: number) => {
          indexed.push(to);
          return target.indexEntries(from, to);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store: gated,
    indexed,
    close() {
      indexed.length = 0;
      gate = new Promise((resolve) => {
        release = resolve;
      });
    },
    open: () => release(),
  };
}

describe('background indexing and waiting appends (pglite)', () => {
  const openLedger = ledgerPerTest();

  it('when appends are waiting, then the index waits for them, and catches up once they are in', async () => {
    const base = await openLedger('pglite');
    await base.ledger.close();
    const gate = gatedStore(base.store);
    const ledger = await base.reopen({ store: gate.store, autoIndex: true });
    await ledger.append([requestEvent(0)]);
    const committed = ledger.size;
    expect(ledger.indexBacklog).toBeGreaterThan(0);

    gate.close();
    const waiting = [ledger.append([requestEvent(1)]), ledger.append([requestEvent(2)])];
    // The indexer's turn comes every 25 ms; ten of them pass with appends waiting.
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(gate.indexed).toEqual([]);

    gate.open();
    await Promise.all(waiting);
    await vi.waitFor(() => expect(ledger.indexBacklog).toBe(0), { timeout: 5_000 });
    expect(Math.max(...gate.indexed)).toBe(committed + 2);
  });
});

import { describe, expect, it, vi } from 'vitest';
import { INDEX_STEP } from '../src/app/ledger.js';
import type { LedgerStore } from '../src/ports/ledger-store.js';
import { ledgerPerTest, requestEvent } from './support.js';

// The search index is derived; the entries are the evidence. While appends are being written or
// waiting for the database, the background indexer keeps out of their way, and it catches up once
// they are done.

/** Longer than two of the indexer's turns (INDEX_PAUSE_MS, 250 ms, apart). */
const TWO_TURNS_MS = 700;

/** The store with its appends held at a gate the test opens. */
function gatedStore(store: LedgerStore): {
  store: LedgerStore;
  close(): void;
  open(): void;
  indexed: number[];
  /** Words steps fail while set (the step is retried later). */
  failWords: boolean;
  /** The index steps that ran, in order. */
  steps: string[];
} {
  let gate: Promise<void> = Promise.resolve();
  let release = (): void => {};
  const indexed: number[] = [];
  const steps: string[] = [];
  const control = { failWords: false };
  const gated = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'append') {
        return async (...args: Parameters<LedgerStore['append']>) => {
          await gate;
          return target.append(...args);
        };
      }
      if (property === 'indexWords') {
        return async (from: number, to: number) => {
          if (control.failWords) throw new Error('words held back by the test');
          await target.indexWords(from, to);
          steps.push('words');
        };
      }
      if (property === 'indexEntries') {
        return (from: number, to: number) => {
          indexed.push(to);
          steps.push('attributes');
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
    steps,
    get failWords() {
      return control.failWords;
    },
    set failWords(value: boolean) {
      control.failWords = value;
    },
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
    await new Promise((resolve) => setTimeout(resolve, TWO_TURNS_MS));
    expect(gate.indexed).toEqual([]);

    gate.open();
    await Promise.all(waiting);
    await vi.waitFor(() => expect(ledger.indexBacklog).toBe(0), { timeout: 5_000 });
    expect(Math.max(...gate.indexed)).toBe(committed + 2);
  });

  /** A ledger with one entry not yet indexed, whose store the test can hold. */
  async function behindByOne() {
    const base = await openLedger('pglite');
    await base.ledger.close();
    const gate = gatedStore(base.store);
    const ledger = await base.reopen({ store: gate.store, autoIndex: true });
    await ledger.append([requestEvent(0)]);
    expect(ledger.indexBacklog).toBeGreaterThan(0);
    return { ledger, gate };
  }

  it('when a delivery of a step or more is being written and none waits behind it, then the index waits for it too', async () => {
    // A relay catching up hands over its next full delivery only once the last one is in: none is
    // ever waiting, yet the ledger is behind, and index steps between them halved the catch-up.
    const { ledger, gate } = await behindByOne();
    gate.close();
    const writing = ledger.append(Array.from({ length: INDEX_STEP }, (_, i) => requestEvent(i + 1)));
    await new Promise((resolve) => setTimeout(resolve, TWO_TURNS_MS));
    expect(gate.indexed).toEqual([]);

    gate.open();
    await writing;
    await vi.waitFor(() => expect(ledger.indexBacklog).toBe(0), { timeout: 5_000 });
  });

  it('when a small delivery is being written, then the index does not wait for it', async () => {
    // A gateway keeping up hands over a few events at a time: its words stay close behind.
    const { ledger, gate } = await behindByOne();
    gate.close();
    const writing = ledger.append([requestEvent(1)]);
    await vi.waitFor(() => expect(gate.indexed).toEqual([1]), { timeout: 5_000 });

    gate.open();
    await writing;
  });

  /**
   * A ledger (index bound: 3 entries) whose words fell 4 + `more` entries behind, and its attributes
   * `more`; then a large delivery is held at the gate, so appends come first.
   */
  async function wordsBehindWhileAppending(more: number) {
    const base = await openLedger('pglite');
    await base.ledger.close();
    const gate = gatedStore(base.store);
    const ledger = await base.reopen({ store: gate.store, autoIndex: true, indexDeferralLimit: 3 });
    gate.failWords = true;
    await ledger.append([0, 1, 2, 3].map((n) => requestEvent(n)));
    await vi.waitFor(() => expect(ledger.indexBacklog).toBe(0), { timeout: 5_000 });
    await ledger.append(Array.from({ length: more }, (_, i) => requestEvent(4 + i)));
    expect(ledger.indexBacklog).toBe(more);
    expect(ledger.wordsBacklog).toBeGreaterThanOrEqual(4 + more);

    gate.failWords = false;
    gate.steps.length = 0;
    gate.close();
    const writing = ledger.append(Array.from({ length: INDEX_STEP }, (_, i) => requestEvent(4 + more + i)));
    return { ledger, gate, writing };
  }

  it('when appends keep the index waiting, then each part is bounded on its own: words past the limit get their step while the attributes, under it, wait', async () => {
    const { ledger, gate, writing } = await wordsBehindWhileAppending(1);
    await vi.waitFor(() => expect(ledger.wordsBacklog).toBe(0), { timeout: 5_000 });
    expect(gate.steps).toEqual(['words']);
    expect(ledger.indexBacklog).toBe(1);

    gate.open();
    await writing;
    await vi.waitFor(() => expect(ledger.indexBacklog).toBe(0), { timeout: 5_000 });
  });

  it('when appends keep the index waiting and both parts are past the limit, then the one furthest behind goes first', async () => {
    const { ledger, gate, writing } = await wordsBehindWhileAppending(4);
    await vi.waitFor(() => expect(ledger.indexBacklog + ledger.wordsBacklog).toBe(0), { timeout: 5_000 });
    expect(gate.steps).toEqual(['words', 'attributes']);

    gate.open();
    await writing;
  });
});

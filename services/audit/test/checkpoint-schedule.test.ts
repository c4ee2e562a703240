import { InProcessBus } from '@flowloom/bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StandaloneAudit, startAudit } from '../src/main.js';
import type { CheckpointRecord } from '../src/ports/ledger-store.js';
import type { TestDatabase } from './databases.js';
import { openTestDatabase, requestEvent, standaloneAuditConfig, tempDir } from './support.js';
import { startWitness, type TestWitness } from './witness.js';

// The service's checkpoint timer: a checkpoint is signed every interval while there are new
// entries, and none while the log is idle (an idle log would otherwise keep signing the same tree
// head and sending it to the witness). Observed where a signing shows: the checkpoints table and
// the witness endpoint every signed checkpoint is sent to.

const ADMIN = 'flk_audit-schedule-admin-key-0123456789abcdef';
const INTERVAL_MS = 150;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the audit service checkpoint schedule', () => {
  let database: TestDatabase;
  let bus: InProcessBus;
  let audit: StandaloneAudit;
  let witness: TestWitness;
  const dir = tempDir();

  const signed = (): Promise<CheckpointRecord[]> => audit.service.ledger.ledgerStore.checkpoints(0, 10_000);

  /** Waits for the first checkpoint of `size` entries; fails after `ms`. */
  const checkpointOf = async (size: number, ms: number): Promise<CheckpointRecord> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = (await signed()).find((c) => c.treeSize === size);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no checkpoint of size ${size} within ${ms} ms`);
      await sleep(20);
    }
  };

  const publishAndWait = async (count: number, first: number): Promise<number> => {
    const target = audit.service.ledger.size + count;
    await bus.publish(Array.from({ length: count }, (_, i) => requestEvent(first + i)));
    while (audit.service.ledger.size < target) await sleep(10);
    return target;
  };

  /** What was signed so far: stored checkpoints and the witness's copies, by tree size. */
  const sizes = async () => ({
    stored: (await signed()).map((c) => c.treeSize),
    witnessed: witness.received.map((r) => r.treeSize),
  });

  beforeAll(async () => {
    witness = await startWitness();
    database = await openTestDatabase('pglite');
    bus = new InProcessBus();
    audit = await startAudit({
      config: standaloneAuditConfig(dir.path, ADMIN, {
        checkpointIntervalMs: INTERVAL_MS,
        checkpointUrl: witness.url,
      }),
      db: database.db,
      bus,
    });
  });
  afterAll(async () => {
    await audit?.close();
    await bus?.close();
    await database?.drop();
    await witness?.close();
    dir.remove();
  });

  it('when the log is idle, then no checkpoint is signed however many intervals pass', async () => {
    // The empty log's first checkpoint is signed at start.
    expect(await sizes()).toEqual({ stored: [0], witnessed: [0] });
    await sleep(INTERVAL_MS * 8);
    expect(await sizes()).toEqual({ stored: [0], witnessed: [0] });
  });

  it('when new entries arrive, then one checkpoint of them is signed within the interval, and none after', async () => {
    const size = await publishAndWait(7, 0);
    // Generous for a shared machine: the timer fires every interval; without it, nothing comes.
    await checkpointOf(size, INTERVAL_MS * 20);
    await sleep(INTERVAL_MS * 8);
    expect(await sizes()).toEqual({ stored: [0, size], witnessed: [0, size] });

    // And again for the next batch: the timer keeps going after an idle stretch.
    const next = await publishAndWait(3, 100);
    await checkpointOf(next, INTERVAL_MS * 20);
    await sleep(INTERVAL_MS * 8);
    expect(await sizes()).toEqual({ stored: [0, size, next], witnessed: [0, size, next] });
  });
});

import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { type Db, migrate } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gatewayMigrations } from '../src/adapters/migrations.js';
import { OutboxRelay, SqlOutbox } from '../src/adapters/sql-outbox.js';
import { openTestPostgres, type TestDatabase } from './databases.js';
import { RecordingBus } from './recording-bus.js';

// The outbox writes with two inserts in flight: an append that arrives while one insert is on its
// way is written at once rather than after it; beyond two, appends are group-committed as before.

const event = (n: number): CloudEvent<{ n: number }> =>
  createEvent('dev.flowloom.test.writers.v1', 'flowloom/test', { n }, `test/${n}`);

/** The real database, with each outbox insert held until the test lets it through. */
function holding(db: Db) {
  const held: Array<() => void> = [];
  const gated: Db = {
    kind: db.kind,
    query: async (sql, params) => {
      if (sql.includes('insert into outbox')) await new Promise<void>((release) => held.push(release));
      return db.query(sql, params);
    },
    transaction: (fn) => db.transaction(fn),
    exec: (sql) => db.exec(sql),
    close: () => db.close(),
  };
  return { gated, held };
}

const settled = async (p: Promise<void>): Promise<boolean> => {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await new Promise((r) => setTimeout(r, 50));
  return done;
};

describe('SqlOutbox writers on PostgreSQL', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await openTestPostgres();
    await migrate(database.db, gatewayMigrations);
  });
  afterAll(async () => database?.drop());

  it('when an append arrives while an insert is in flight, then a second insert writes it at once; a third waits and is batched', async () => {
    const { gated, held } = holding(database.db);
    const outbox = new SqlOutbox(gated);
    const first = outbox.append([event(1)]);
    const second = outbox.append([event(2)]);
    await new Promise((r) => setTimeout(r, 20));
    // Both inserts are on their way: the second did not wait for the first.
    expect(held).toHaveLength(2);
    const third = outbox.append([event(3)]);
    const fourth = outbox.append([event(4)]);
    expect(held).toHaveLength(2);
    held[1]!();
    await second;
    expect(await settled(first)).toBe(false);
    // The freed writer takes what queued meanwhile in one insert.
    await new Promise((r) => setTimeout(r, 20));
    expect(held).toHaveLength(3);
    held[2]!();
    await Promise.all([third, fourth]);
    expect(await settled(first)).toBe(false);
    held[0]!();
    await first;

    const bus = new RecordingBus();
    await new OutboxRelay(database.db, bus).publishPending();
    expect(bus.accepted.map((e) => (e.data as { n: number }).n).sort()).toEqual([1, 2, 3, 4]);
  });

  it('when appends follow one another, then they reach the bus in that order', async () => {
    const outbox = new SqlOutbox(database.db);
    const bus = new RecordingBus();
    const relay = new OutboxRelay(database.db, bus);
    await relay.publishPending();
    const events = Array.from({ length: 20 }, (_, i) => event(100 + i));
    for (const e of events) await outbox.append([e]);
    await relay.publishPending();
    expect(bus.accepted.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  it('when events keep coming while the bus is slow, then the relay gathers them into a round per interval, and stop publishes the rest at once', async () => {
    const outbox = new SqlOutbox(database.db);
    const bus = new RecordingBus();
    const relay = new OutboxRelay(database.db, bus, { gatherMs: 100 });
    await relay.publishPending();
    const before = bus.calls;
    // A produce request that takes 20 ms: back to back, a round would go out every ~20 ms.
    bus.delayMs = 20;
    relay.start();
    const events = Array.from({ length: 150 }, (_, i) => event(200 + i));
    for (const e of events) {
      await outbox.append([e]);
      relay.wake();
      await new Promise((r) => setTimeout(r, 4));
    }
    const stopping = Date.now();
    await relay.stop();
    expect(Date.now() - stopping).toBeLessThan(100 + 20 * 4);
    expect(bus.accepted.slice(-150).map((e) => e.id)).toEqual(events.map((e) => e.id));
    // About 0.6 s or more of appends: one round per 100 ms, and the rest at stop.
    expect(bus.calls - before).toBeLessThanOrEqual(12);
  });

  /** A relay whose next publish is held at a gate: `reached` once it is there, `release` lets it on. */
  function heldRelay(gatherMs: number) {
    const bus = new RecordingBus();
    const relay = new OutboxRelay(database.db, bus, { gatherMs, idleMs: 60_000 });
    const outbox = new SqlOutbox(database.db, () => relay.wake());
    let release: () => void = () => {};
    bus.gate = new Promise<void>((r) => {
      release = () => {
        bus.gate = undefined;
        r();
      };
    });
    const reached = new Promise<void>((r) => {
      bus.reachedGate = r;
    });
    return { bus, relay, outbox, reached, release: () => release() };
  }

  it('when rows come in while a round is out, then the next round takes them once the interval has passed, without waiting for the idle poll', async () => {
    await new OutboxRelay(database.db, new RecordingBus()).publishPending();
    const { bus, relay, outbox, reached, release } = heldRelay(300);
    relay.start();
    try {
      const [first, second, third] = [event(400), event(401), event(402)];
      const roundStarted = Date.now();
      await outbox.append([first]);
      await reached;
      // Written while that round is out; nothing wakes the relay after them, and its poll is a minute.
      await outbox.append([second]);
      await outbox.append([third]);
      release();
      await vi.waitFor(() => expect(bus.accepted).toHaveLength(3), { timeout: 3_000 });
      expect(Date.now() - roundStarted).toBeGreaterThanOrEqual(250);
      expect(bus.accepted.map((e) => e.id)).toEqual([first.id, second.id, third.id]);
      // The two gathered rows went out in one round.
      expect(bus.calls).toBe(2);
    } finally {
      await relay.stop();
    }
  });

  it('when the relay is stopped while it gathers, then stop returns at once and publishes the gathered rows', async () => {
    await new OutboxRelay(database.db, new RecordingBus()).publishPending();
    const { bus, relay, outbox, reached, release } = heldRelay(60_000);
    relay.start();
    const [first, second] = [event(500), event(501)];
    await outbox.append([first]);
    await reached;
    await outbox.append([second]);
    release();
    await vi.waitFor(() => expect(bus.accepted.map((e) => e.id)).toEqual([first.id]));
    // The second row waits out the minute-long interval: only stop can cut it short.
    await new Promise((r) => setTimeout(r, 100));
    expect(bus.accepted).toHaveLength(1);
    const stopping = Date.now();
    await relay.stop();
    expect(Date.now() - stopping).toBeLessThan(1_000);
    expect(bus.accepted.map((e) => e.id)).toEqual([first.id, second.id]);
  });

  it("when a flush is asked while the relay's own round is out, then it returns only once that round's events are on the bus too", async () => {
    const outbox = new SqlOutbox(database.db);
    const bus = new RecordingBus();
    const relay = new OutboxRelay(database.db, bus);
    await relay.publishPending();
    let release: () => void = () => {};
    bus.gate = new Promise<void>((r) => {
      release = r;
    });
    const reached = new Promise<void>((r) => {
      bus.reachedGate = r;
    });
    relay.start();
    const e = event(400);
    await outbox.append([e]);
    relay.wake();
    // The relay's round holds the batch (and the relay lock) while the bus has not answered.
    await reached;
    const flushed = relay.publishPending();
    expect(await settled(flushed.then(() => undefined))).toBe(false);
    release();
    await flushed;
    expect(bus.accepted.map((a) => a.id)).toContain(e.id);
    bus.gate = undefined;
    await relay.stop();
  });
});

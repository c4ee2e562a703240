import { type EventBus, publishExceptRefused } from '@flowloom/bus';
import type { CloudEvent } from '@flowloom/contracts';
import { OneAtATime, RelayLoop } from '@flowloom/outbox';
import type { Db } from '@flowloom/store';
import type { Outbox } from '../ports/outbox.js';
import type { ParkedRow } from '../ports/parked-events.js';
import { insertOutboxEvents, parkRefused } from './sql-outbox-rows.js';

interface Waiter {
  events: readonly CloudEvent[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Writes in flight at once. With one, an append arriving during a write waits for it to finish and
 * then for its own: a second writer takes it at once, so a request waits for one insert, not two. The
 * order the relay publishes stays that of storage (seq); appends that were concurrent have no order of
 * their own, and an append made after another resolved still lands after it.
 */
const WRITERS = 2;

/**
 * The transactional outbox with group commit: appends that arrive while every writer is busy are
 * batched into the next single INSERT, so the hot path pays one round trip shared by many requests.
 * Inserting is idempotent by event id.
 */
export class SqlOutbox implements Outbox {
  private queue: Waiter[] = [];
  private writers = 0;

  constructor(
    private readonly db: Db,
    /** Called after each durable write, so the relay can publish without waiting for its poll. */
    private readonly onWritten: () => void = () => {},
  ) {}

  append(events: readonly CloudEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      if (this.writers < WRITERS) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writers++;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          await insertOutboxEvents(
            this.db,
            batch.flatMap((w) => w.events),
          );
          for (const w of batch) w.resolve();
          this.onWritten();
        } catch (error) {
          for (const w of batch) w.reject(error);
        }
      }
    } finally {
      this.writers--;
    }
  }
}

/** The advisory lock of the relay that is publishing: this number, then the outbox table's oid (migrations hold 7411). */
const RELAY_LOCK = 7412;

export interface RelayOptions {
  batchSize?: number;
  /** Poll interval when idle; appends also wake the relay directly. */
  idleMs?: number;
  /** While rows keep coming, the least time between the starts of two rounds (ms). */
  gatherMs?: number;
  /** Published rows older than this are deleted (they live on in the bus and the ledger). */
  retainPublishedMs?: number;
  onError?: (error: unknown) => void;
  /** An event the bus refused for good was parked (after its transaction committed). */
  onParked?: (parked: ParkedRow) => void;
  /** The source of the stand-in events of parked ones (the relaying service). */
  source?: string;
}

/**
 * Publishes outbox rows in order and marks them published only after the bus accepted them, so a
 * crash between the two republishes (consumers deduplicate by event id) and never loses an event.
 * `for update skip locked` lets several gateway replicas relay from one database. An event the bus
 * refuses for good is parked with a stand-in published in its place, so it cannot stall the rest.
 */
export class OutboxRelay {
  private readonly loop: RelayLoop;
  private readonly publishing = new OneAtATime();
  private lastCleanup = 0;
  private readonly batchSize: number;
  private readonly retainMs: number;
  private readonly source: string;

  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
    private readonly options: RelayOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 500;
    this.loop = new RelayLoop({
      round: async () => {
        await this.publishPending();
        await this.cleanup();
        return 'nothing';
      },
      idleMs: options.idleMs ?? 250,
      gatherMs: options.gatherMs ?? 50,
      backOffMs: 1_000,
      onError: (error) => this.options.onError?.(error),
    });
    this.retainMs = options.retainPublishedMs ?? 3_600_000;
    this.source = options.source ?? 'flowloom/gateway';
  }

  start(): void {
    this.loop.start();
  }

  /**
   * New rows were written. While publishing fails (the bus is down) they retry at most once a second,
   * not once per request: each try reads a batch in a transaction only for the bus to refuse it.
   */
  wake(): void {
    this.loop.notify();
  }

  /** The bus is reachable again: publish the backlog now rather than at the end of the back-off. */
  retryNow(): void {
    this.loop.retryNow();
  }

  /** Publishes everything pending, then stops; what cannot be published now stays for the next start. */
  async stop(): Promise<void> {
    await this.loop.stop();
    await this.publishPending().catch((error: unknown) => this.options.onError?.(error));
  }

  /** Events written and not yet published, parked ones aside (the partial index makes this cheap). */
  async backlog(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      'select count(*)::int as n from outbox where published_at is null and parked_at is null',
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Publishes until nothing is pending; returns how many events went out. Calls in this process go
   * one after another, the relay's own rounds included: a flush that found the relay lock held by a
   * round in flight would otherwise return before that round's events were on the bus.
   */
  publishPending(): Promise<number> {
    return this.publishing.run(() => this.publishAll());
  }

  private async publishAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const { published, read, parked } = await this.publishBatch();
      total += published;
      for (const p of parked) this.options.onParked?.(p);
      // After a parking, the stand-ins wait behind the batch: go on for them.
      if (read < this.batchSize && parked.length === 0) return total;
    }
  }

  private async publishBatch(): Promise<{ published: number; read: number; parked: ParkedRow[] }> {
    const none = { published: 0, read: 0, parked: [] };
    return this.db.transaction(async (tx) => {
      // One relay publishes at a time, whichever replica it runs in: with skip-locked claims alone, two
      // relays would publish different ranges at once, and a job's events could reach the bus out of
      // order. The others find the lock taken and try again at their next wake-up or poll.
      const { rows: lock } = await tx.query<{ mine: boolean }>(
        // Keyed by this outbox table, so installs or tests in other schemas of the database relay freely.
        `select pg_try_advisory_xact_lock(($1::bigint << 32) | 'outbox'::regclass::oid::bigint) as mine`,
        [RELAY_LOCK],
      );
      if (!lock[0]?.mine) return none;
      const { rows } = await tx.query<{ seq: number; event: CloudEvent }>(
        `select seq, event from outbox where published_at is null and parked_at is null
         order by seq limit $1 for update skip locked`,
        [this.batchSize],
      );
      if (rows.length === 0) return none;
      const events = rows.map((r) => r.event);
      const refused = await publishExceptRefused(this.bus, events);
      const refusedIds = new Set(refused.map((r) => r.id));
      const accepted = rows.filter((r) => !refusedIds.has(r.event.id));
      await tx.query('update outbox set published_at = now() where seq = some($1::bigint[])', [
        accepted.map((r) => r.seq),
      ]);
      const parked = refused.length > 0 ? await parkRefused(tx, events, refused, this.source) : [];
      return { published: accepted.length, read: rows.length, parked };
    });
  }

  private async cleanup(): Promise<void> {
    const now = Date.now();
    if (now - this.lastCleanup < 60_000) return;
    this.lastCleanup = now;
    await this.db.query(
      `delete from outbox where published_at is not null and published_at < now() - ($1::bigint * interval '1 millisecond')`,
      [this.retainMs],
    );
  }
}

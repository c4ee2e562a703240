import { type EventBus, type Parking, parkingsOf, publishExceptRefused } from '@flowloom/bus';
import type { CloudEvent } from '@flowloom/contracts';
import { OneAtATime, RelayLoop } from '@flowloom/outbox';
import type { Db, Queryable } from '@flowloom/store';
import type { EventRelay } from '../ports/event-outbox.js';

const BATCH = 100;
const POLL_MS = 1_000;

/** Writes events into policy_outbox (in the caller's transaction); an id already there is left as it is. */
export async function appendPolicyEvents(q: Queryable, events: readonly CloudEvent[]): Promise<void> {
  for (const event of events)
    await q.query('insert into policy_outbox (id, event) values ($1, $2) on conflict (id) do nothing', [
      event.id,
      JSON.stringify(event),
    ]);
}

/**
 * Publishes the policy service's committed events to the bus, at least once and in commit order. An
 * event the bus refuses for good is parked (kept, skipped) with a stand-in published in its place, so
 * it cannot hold up the events after it.
 */
export class SqlEventRelay implements EventRelay {
  private readonly publishing = new OneAtATime();
  // Policy events are few (versions, approvals, interventions): each goes out at once, and a bus
  // that is down is tried again every second.
  private readonly loop = new RelayLoop({
    round: async () => {
      await this.publishPending();
      return 'nothing';
    },
    gatherMs: 0,
    idleMs: POLL_MS,
    backOffMs: POLL_MS,
    maxBackOffMs: POLL_MS,
    onError: (error) => this.onError(error),
  });

  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
    private readonly onError: (error: unknown) => void,
    /** Parked events: the stand-ins' source (this service), and what to do with each (log, count). */
    private readonly parking: { source: string; onParked(parked: Parking): void },
  ) {}

  start(): void {
    this.loop.start();
  }

  wake(): void {
    this.loop.notify();
  }

  /** One publisher at a time in this process; rows are marked only after the bus took them. */
  publishPending(): Promise<number> {
    return this.publishing.run(() => this.publishNow());
  }

  // Published outside any transaction: in-process subscribers write to the same (single-connection)
  // database. Two replicas may both publish a batch; consumers deduplicate by event id.
  private async publishNow(): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.db.query<{ seq: number; event: unknown }>(
        `select seq, event from policy_outbox where published_at is null and parked_at is null
         order by seq limit ${BATCH}`,
      );
      if (rows.rows.length === 0) return total;
      const events = rows.rows.map(
        (r) => (typeof r.event === 'string' ? JSON.parse(r.event) : r.event) as CloudEvent,
      );
      const refused = await publishExceptRefused(this.bus, events);
      const refusedIds = new Set(refused.map((r) => r.id));
      const parked = parkingsOf(events, refused, this.parking.source);
      await this.db.transaction(async (tx) => {
        await tx.query('update policy_outbox set published_at = now() where seq = some($1::bigint[])', [
          rows.rows.filter((_, i) => !refusedIds.has(events[i]?.id ?? '')).map((r) => Number(r.seq)),
        ]);
        for (const p of parked) {
          await tx.query('update policy_outbox set parked_at = now(), park_reason = $2 where id = $1', [
            p.event.id,
            p.reason,
          ]);
          if (p.standIn) await appendPolicyEvents(tx, [p.standIn]);
        }
      });
      for (const p of parked) this.parking.onParked(p);
      total += rows.rows.length - parked.length;
      // After a parking, the stand-ins wait behind the batch: go on for them.
      if (rows.rows.length < BATCH && parked.length === 0) return total;
    }
  }

  /** Events committed but not yet on the bus (growing: the bus is down or the relay is behind). */
  async backlog(): Promise<number> {
    const { rows } = await this.db.query<{ n: unknown }>(
      'select count(*) as n from policy_outbox where published_at is null and parked_at is null',
    );
    return Number(rows[0]?.n ?? 0);
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    await this.publishPending().catch((error: unknown) => this.onError(error));
  }
}

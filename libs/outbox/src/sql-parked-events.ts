import { type CloudEvent, eventDigest } from '@flowloom/contracts';
import type { Db } from '@flowloom/store';
import type { ParkedEvent, ParkedEvents, RedriveOutcome } from './parked-events.js';

/** How often, and how far apart, a redrive runs the relay before it reports what is still on its way. */
const REDRIVE_ATTEMPTS = 10;
const REDRIVE_WAIT_MS = 200;

type ParkedRowView = {
  event: CloudEvent;
  park_reason: string | null;
  parked_at: Date | string;
};

/**
 * An outbox table with parking: `seq` (order), `id` (the event's), `event` (jsonb), `published_at`,
 * `parked_at`, `park_reason`. The gateway's `outbox` keys events by uuid, the policy service's
 * `policy_outbox` by text: ids are compared in the column's own type, so its index serves.
 */
export interface ParkingOutboxTable {
  readonly name: 'outbox' | 'policy_outbox';
  readonly idType: 'uuid' | 'text';
}

/**
 * The parked rows of an SQL outbox. Publishing again takes them out of parking and runs the relay:
 * it publishes them first (they are the oldest rows) or, refused again, parks them with a new stand-in.
 */
export class SqlParkedEvents implements ParkedEvents {
  constructor(
    private readonly db: Db,
    /** Runs the relay until nothing is pending (another replica's relay may be the one that publishes). */
    private readonly publishPending: () => Promise<unknown>,
    private readonly table: ParkingOutboxTable = { name: 'outbox', idType: 'uuid' },
  ) {}

  async list(limit: number): Promise<ParkedEvent[]> {
    const { rows } = await this.db.query<ParkedRowView>(
      `select event, park_reason, parked_at from ${this.table.name} where parked_at is not null
       order by seq limit $1`,
      [limit],
    );
    return rows.map((r) => ({
      id: r.event.id,
      type: r.event.type,
      source: r.event.source,
      ...(r.event.subject !== undefined ? { subject: r.event.subject } : {}),
      time: r.event.time,
      ...eventDigest(r.event),
      reason: r.park_reason ?? '',
      parkedAt: new Date(r.parked_at).toISOString(),
    }));
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `select count(*)::int as n from ${this.table.name} where parked_at is not null`,
    );
    return rows[0]?.n ?? 0;
  }

  async redrive(ids?: readonly string[]): Promise<RedriveOutcome> {
    const { rows } = await this.db.query<{ id: string }>(
      `update ${this.table.name} set parked_at = null, park_reason = null
       where parked_at is not null and ($1::${this.table.idType}[] is null or id = some($1::${this.table.idType}[]))
       returning id::text as id`,
      [ids ? [...ids] : null],
    );
    const requeued = rows.map((r) => r.id);
    if (requeued.length === 0) return { requeued: 0, published: [], parkedAgain: [], pending: [] };
    let state = await this.stateOf(requeued);
    // The relay of this process or another replica may hold the relay lock: wait for it a little.
    for (let attempt = 0; attempt < REDRIVE_ATTEMPTS && state.some((r) => r.pending); attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, REDRIVE_WAIT_MS));
      // A bus still refusing or away is the relay's to log and retry; the outcome names what waits.
      await this.publishPending().catch(() => {});
      state = await this.stateOf(requeued);
    }
    return {
      requeued: requeued.length,
      published: state.filter((r) => r.published).map((r) => r.id),
      parkedAgain: state.filter((r) => r.parked).map((r) => r.id),
      pending: state.filter((r) => r.pending).map((r) => r.id),
    };
  }

  private async stateOf(ids: readonly string[]) {
    const { rows } = await this.db.query<{
      id: string;
      published: boolean;
      parked: boolean;
      pending: boolean;
    }>(
      `select id::text as id, published_at is not null as published, parked_at is not null as parked,
              published_at is null and parked_at is null as pending
       from ${this.table.name} where id = some($1::${this.table.idType}[]) order by seq`,
      [[...ids]],
    );
    return rows;
  }
}

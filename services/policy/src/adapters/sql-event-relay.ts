import type { EventBus } from '@flowloom/bus';
import type { CloudEvent } from '@flowloom/contracts';
import type { Db } from '@flowloom/store';
import type { EventRelay } from '../ports/event-outbox.js';

const BATCH = 100;
const POLL_MS = 1_000;

/**
 * Publishes the policy service's committed events to the bus, at least once and in commit order.
 */
export class SqlEventRelay implements EventRelay {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    this.schedule(0);
  }

  wake(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.publishPending()
        .then(() => undefined)
        .catch((error: unknown) => this.onError(error))
        .finally(() => {
          this.running = undefined;
          const next = this.again ? 0 : POLL_MS;
          this.again = false;
          this.schedule(next);
        });
    }, ms);
  }

  /** One publisher at a time in this process; rows are marked only after the bus took them. */
  publishPending(): Promise<number> {
    const run = this.chain.then(() => this.publishNow());
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  // Published outside any transaction: in-process subscribers write to the same (single-connection)
  // database. Two replicas may both publish a batch; consumers deduplicate by event id.
  private async publishNow(): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.db.query<{ seq: number; event: unknown }>(
        `select seq, event from policy_outbox where published_at is null order by seq limit ${BATCH}`,
      );
      if (rows.rows.length === 0) return total;
      const events = rows.rows.map(
        (r) => (typeof r.event === 'string' ? JSON.parse(r.event) : r.event) as CloudEvent,
      );
      await this.bus.publish(events);
      await this.db.query('update policy_outbox set published_at = now() where seq = any($1::bigint[])', [
        rows.rows.map((r) => Number(r.seq)),
      ]);
      total += rows.rows.length;
      if (rows.rows.length < BATCH) return total;
    }
  }

  /** Events committed but not yet on the bus (growing: the bus is down or the relay is behind). */
  async backlog(): Promise<number> {
    const { rows } = await this.db.query<{ n: unknown }>(
      'select count(*) as n from policy_outbox where published_at is null',
    );
    return Number(rows[0]?.n ?? 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.publishPending().catch((error: unknown) => this.onError(error));
  }
}

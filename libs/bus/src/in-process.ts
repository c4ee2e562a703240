import type { CloudEvent } from '@flowloom/contracts';
import type { BatchEventHandler, EventBus, EventHandler } from './bus.js';

interface Subscription {
  group: string;
  /** Gets every matching event of one `publish` call at once. */
  handler: BatchEventHandler;
  types: readonly string[] | undefined;
  /** Serializes delivery per subscription so each consumer sees events in publish order. */
  tail: Promise<void>;
}

/**
 * The embedded bus: events go straight to the subscribers in this process. Durability comes from
 * the outbox in front of it — `publish` resolves only when every handler has finished, so the relay
 * marks an event published only once its effect is done.
 */
export class InProcessBus implements EventBus {
  private readonly subscriptions: Subscription[] = [];
  private closed = false;

  async publish(events: readonly CloudEvent[]): Promise<void> {
    if (this.closed) throw new Error('the event bus is closed');
    const deliveries: Promise<void>[] = [];
    for (const sub of this.subscriptions) {
      const mine = events.filter((e) => !sub.types || sub.types.some((t) => e.type.startsWith(t)));
      if (mine.length === 0) continue;
      const run = sub.tail.then(() => sub.handler(mine));
      sub.tail = run.catch(() => {});
      deliveries.push(run);
    }
    await Promise.all(deliveries);
  }

  async subscribe(group: string, handler: EventHandler, types?: readonly string[]): Promise<void> {
    await this.subscribeBatch(
      group,
      async (events) => {
        for (const event of events) await handler(event);
      },
      types,
    );
  }

  async subscribeBatch(group: string, handler: BatchEventHandler, types?: readonly string[]): Promise<void> {
    if (this.subscriptions.some((s) => s.group === group)) {
      throw new Error(`consumer group "${group}" already subscribed in this process`);
    }
    this.subscriptions.push({ group, handler, types, tail: Promise.resolve() });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.subscriptions.map((s) => s.tail));
  }
}

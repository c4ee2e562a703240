import type { CloudEvent } from '@flowloom/contracts';

/**
 * Durable hand-off of events: `append` resolves once the events are on durable storage (the same
 * database as the gateway's state); a relay publishes them to the bus afterwards, at least once.
 */
export interface Outbox {
  append(events: readonly CloudEvent[]): Promise<void>;
}

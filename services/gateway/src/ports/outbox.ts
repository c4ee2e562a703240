import type { CloudEvent } from '@flowloom/contracts';

/**
 * Durable hand-off of events: `append` resolves once the events are on durable storage (the same
 * database as the gateway's state); a relay publishes them to the bus afterwards, at least once.
 */
export interface Outbox {
  append(events: readonly CloudEvent[]): Promise<void>;
  /**
   * Throws (503 `unavailable`) when events cannot be recorded now and the gateway is configured to
   * fail closed. Called before any upstream call or spend, so nothing is answered unrecorded.
   */
  ensureWritable?(): void;
}

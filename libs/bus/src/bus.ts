import type { CloudEvent } from '@flowloom/contracts';

export type EventHandler = (event: CloudEvent) => Promise<void>;

/**
 * Publish/subscribe of CloudEvents between services. Delivery is at least once: a handler may see
 * an event again after a crash or redelivery and must deduplicate by `event.id`.
 */
export interface EventBus {
  publish(events: readonly CloudEvent[]): Promise<void>;
  /**
   * `group` names a consumer group: each event goes to one member of each group. `types` filters by
   * type prefix (e.g. `dev.flowloom.gateway.`); all events when omitted.
   */
  subscribe(group: string, handler: EventHandler, types?: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

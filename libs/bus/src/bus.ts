import type { CloudEvent } from '@flowloom/contracts';
import type { ConsumerLag } from './consumer-lag.js';

export type EventHandler = (event: CloudEvent) => Promise<void>;

/** Receives the events of one delivery at once (in order); resolving acknowledges all of them. */
export type BatchEventHandler = (events: readonly CloudEvent[]) => Promise<void>;

/**
 * Publish/subscribe of CloudEvents between services. Delivery is at least once: a handler may see
 * an event again after a crash or redelivery and must deduplicate by `event.id`.
 */
export interface EventBus {
  /**
   * Resolves once every event is accepted. Rejects with `EventsRefusedError` when the bus refused
   * some events for good (e.g. too large for their topic): all the others were accepted then.
   */
  publish(events: readonly CloudEvent[]): Promise<void>;
  /**
   * `group` names a consumer group: each event goes to one member of each group. `types` filters by
   * type prefix (e.g. `dev.flowloom.gateway.`); all events when omitted.
   */
  subscribe(group: string, handler: EventHandler, types?: readonly string[]): Promise<void>;
  /**
   * Like `subscribe`, but hands over each delivery (a published batch, a Kafka fetch) in one call,
   * so a consumer can make the whole batch durable in one write (the audit ledger's group commit).
   * Resolving acknowledges every event of the batch; rejecting redelivers them. Optional: a consumer
   * falls back to `subscribe` on a bus without it.
   */
  subscribeBatch?(group: string, handler: BatchEventHandler, types?: readonly string[]): Promise<void>;
  /** Whether the bus can carry events now, for /readyz and metrics; a bus without it is always up. */
  health?(): BusHealth;
  /**
   * Calls `listener` each time the bus (re)connects after an outage, so a relay waiting out a
   * back-off publishes at once. Returns the unsubscribe function.
   */
  onConnected?(listener: () => void): () => void;
  close(): Promise<void>;
}

export interface BusHealth {
  /**
   * `connected`: events flow. `connecting`: not reached yet since start. `unavailable`: an attempt
   * failed or a connection was lost; the bus keeps retrying in the background.
   */
  state: 'connected' | 'connecting' | 'unavailable';
  /** When this state began (epoch ms). */
  since: number;
  /** The last failure, while not connected. */
  reason?: string;
  /** Where the bus connects (the brokers), for messages that say what to fix. */
  target: string;
  /** Each consumer group of this process: consuming, or waiting for the bus (and why). */
  consumers: Record<string, string>;
  /** The last reading of how far this process's consumer groups are behind, per topic and partition. */
  lag?: readonly ConsumerLag[];
}

import { Gauge, type Registry } from 'prom-client';

/** The part of a bus's health the gauges read (structural: telemetry does not depend on the bus). */
export interface BusHealthView {
  state: string;
  /** When this state began (epoch ms). */
  since: number;
  /** The last reading of the process's consumer groups' lag, per topic and partition. */
  lag?: readonly { group: string; topic: string; partition: number; messages: number }[];
}

/**
 * Whether the event bus carries events, as `flowloom_bus_connected` and
 * `flowloom_bus_unavailable_seconds`: one definition for every service that talks to Kafka, so the
 * gateway, policy and audit dashboards read the same series.
 */
export function registerBusGauges(health: () => BusHealthView | undefined, registry: Registry): void {
  new Gauge({
    name: 'flowloom_bus_connected',
    help: '1 while the event bus (Kafka) is reachable; 0 while events wait in the outbox for it',
    registers: [registry],
    collect() {
      this.set(health()?.state === 'connected' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'flowloom_bus_unavailable_seconds',
    help: 'How long the event bus (Kafka) has been unreachable; 0 while it is connected',
    registers: [registry],
    collect() {
      const h = health();
      this.set(!h || h.state === 'connected' ? 0 : (Date.now() - h.since) / 1000);
    },
  });
  new Gauge({
    name: 'flowloom_bus_consumer_lag_messages',
    help: 'Messages a consumer group of this process has not committed yet, per topic and partition (log end minus committed offset), as last read from Kafka; growing: the consumer falls behind or is stuck',
    labelNames: ['group', 'topic', 'partition'],
    registers: [registry],
    collect() {
      // Whole reading each time: a partition or group that went away leaves no stale series.
      this.reset();
      for (const l of health()?.lag ?? [])
        this.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, l.messages);
    },
  });
}

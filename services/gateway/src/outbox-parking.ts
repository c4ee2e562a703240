import { eventDigest } from '@flowloom/contracts';
import { Counter, Gauge, type Logger, type Registry } from '@flowloom/telemetry';
import type { ParkedEvents, ParkedRow } from './ports/parked-events.js';

// Parked outbox events are for an operator to act on: each parking is an error line and a count, and
// a gauge says how many wait now (non-zero: raise the topic's limit, then publish them again).

/** What the relay calls for each parked event: an error log line (ids, type, size, reason; no content) and a count. */
export function reportParked(registry: Registry, log: Logger): (parked: ParkedRow) => void {
  const counter = new Counter({
    name: 'flowloom_outbox_parked_total',
    help: 'Events the bus refused for good (e.g. too large for their topic) and the outbox parked, with a stand-in on the audit trail',
    labelNames: ['type'],
    registers: [registry],
  });
  return ({ event, reason, standIn }) => {
    counter.inc({ type: event.type });
    const { sizeBytes, sha256 } = eventDigest(event);
    log.error(
      {
        eventId: event.id,
        type: event.type,
        sizeBytes,
        sha256,
        reason,
        ...(standIn ? { standInId: standIn.id } : {}),
      },
      'outbox: the bus refused an event for good; it is parked and a stand-in takes its place on the audit trail. Fix the cause (e.g. raise the topic max.message.bytes), then: flowloom outbox parked --redrive',
    );
  };
}

/** How many events are parked now, read at each scrape. */
export function parkedGauge(registry: Registry, parked: ParkedEvents): void {
  new Gauge({
    name: 'flowloom_outbox_parked_events',
    help: 'Events parked in the outbox now (refused for good by the bus); list and publish them again with flowloom outbox parked',
    registers: [registry],
    async collect() {
      try {
        this.set(await parked.count());
      } catch {
        // Unreadable while the database is down: the last count stays.
      }
    },
  });
}

import type { Parking } from '@flowloom/bus';
import { eventDigest } from '@flowloom/contracts';
import { Counter, Gauge, type Logger, type Registry } from '@flowloom/telemetry';
import type { ParkedEvents } from './parked-events.js';

// Parked outbox events are for an operator to act on: each parking is an error line and a count, and
// a gauge says how many wait now (non-zero: raise the topic's limit, then publish them again).

/** Which outbox: its series' prefix, and the command that publishes its parked events again. */
export interface ParkingOutboxName {
  /** `flowloom_outbox` (the gateway's), `flowloom_policy_outbox`: series `<prefix>_parked_total`, `<prefix>_parked_events`. */
  metricPrefix: string;
  /** What the log line tells an operator to run, e.g. `flowloom outbox parked --redrive`. */
  redriveCommand: string;
  /** Where the events are parked, for the log line and help texts (`the outbox`, `policy_outbox`). */
  where: string;
}

export const GATEWAY_OUTBOX: ParkingOutboxName = {
  metricPrefix: 'flowloom_outbox',
  redriveCommand: 'flowloom outbox parked --redrive',
  where: 'the outbox',
};

export const POLICY_OUTBOX: ParkingOutboxName = {
  metricPrefix: 'flowloom_policy_outbox',
  redriveCommand: 'flowloom outbox parked --service policy --redrive',
  where: 'policy_outbox',
};

/** What a relay calls for each parked event: an error log line (ids, type, size, reason; no content) and a count. */
export function reportParked(
  registry: Registry,
  log: Logger,
  outbox: ParkingOutboxName = GATEWAY_OUTBOX,
): (parked: Parking) => void {
  const counter = new Counter({
    name: `${outbox.metricPrefix}_parked_total`,
    help: `Events the bus refused for good (e.g. too large for their topic) and ${outbox.where} parked, with a stand-in on the audit trail`,
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
      `outbox: the bus refused an event for good; it is parked in ${outbox.where} and a stand-in takes its place on the audit trail. Fix the cause (e.g. raise the topic max.message.bytes), then: ${outbox.redriveCommand}`,
    );
  };
}

/** How many events are parked now, read at each scrape. */
export function parkedGauge(
  registry: Registry,
  parked: Pick<ParkedEvents, 'count'>,
  outbox: ParkingOutboxName = GATEWAY_OUTBOX,
): void {
  new Gauge({
    name: `${outbox.metricPrefix}_parked_events`,
    help: `Events parked in ${outbox.where} now (refused for good by the bus); list and publish them again with ${outbox.redriveCommand.replace(' --redrive', '')}`,
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

import type { Parking } from '@flowloom/bus';

// The port is shared with the policy service's outbox (@flowloom/outbox).
export type { ParkedEvent, ParkedEvents, RedriveOutcome } from '@flowloom/outbox';

/** One parking by a relay, for its log line and metric. */
export type ParkedRow = Parking;

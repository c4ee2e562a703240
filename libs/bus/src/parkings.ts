import { type CloudEvent, OUTBOX_EVENT_PARKED, parkedEventStandIn } from '@flowloom/contracts';
import type { RefusedEvent } from './refused-events.js';

/** An event an outbox relay parks because the bus refused it for good, with its stand-in. */
export interface Parking {
  event: CloudEvent;
  reason: string;
  /** The stand-in to publish in its place; none for a refused stand-in (it would only be refused again). */
  standIn?: CloudEvent;
}

/**
 * The parkings of the refused events among `events`, in their order, each with its stand-in from
 * `source`; a refused stand-in gets none (it would only be refused again).
 */
export function parkingsOf(
  events: readonly CloudEvent[],
  refused: readonly RefusedEvent[],
  source: string,
): Parking[] {
  const reasons = new Map(refused.map((r) => [r.id, r.reason]));
  return events.flatMap((event) => {
    const reason = reasons.get(event.id);
    if (reason === undefined) return [];
    return event.type === OUTBOX_EVENT_PARKED
      ? [{ event, reason }]
      : [{ event, reason, standIn: parkedEventStandIn(event, reason, source) }];
  });
}

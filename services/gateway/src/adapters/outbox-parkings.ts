import type { RefusedEvent } from '@flowloom/bus';
import { type CloudEvent, OUTBOX_EVENT_PARKED, parkedEventStandIn } from '@flowloom/contracts';
import type { ParkedRow } from '../ports/parked-events.js';

/**
 * The parkings of the refused events among `events`, in their order, each with its stand-in from
 * `source`; a refused stand-in gets none (it would only be refused again).
 */
export function parkingsOf(
  events: readonly CloudEvent[],
  refused: readonly RefusedEvent[],
  source: string,
): ParkedRow[] {
  const reasons = new Map(refused.map((r) => [r.id, r.reason]));
  return events.flatMap((event) => {
    const reason = reasons.get(event.id);
    if (reason === undefined) return [];
    return event.type === OUTBOX_EVENT_PARKED
      ? [{ event, reason }]
      : [{ event, reason, standIn: parkedEventStandIn(event, reason, source) }];
  });
}

import {
  type CloudEvent,
  createEvent,
  OUTBOX_EVENT_REDRIVEN,
  type OutboxEventRedriven,
} from '@flowloom/contracts';
import { z } from 'zod';
import type { ParkedEvent, ParkedEvents, RedriveOutcome } from './parked-events.js';

// The admin API over an outbox's parked events, the same for every service that parks: the routes
// validate with these schemas and call these, after authenticating the caller their own way.

/** `GET .../parked?limit=N`. */
export const parkedListQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

/** `POST .../parked/redrive`. */
export const redriveBody = z.strictObject({
  /** The parked events to publish again; every parked event when omitted. */
  ids: z.array(z.uuid()).min(1).max(1000).optional(),
});

/** The oldest `limit` parked events and how many there are; none without a parking outbox. */
export async function listParked(
  parked: ParkedEvents | undefined,
  limit: number,
): Promise<{ total: number; data: ParkedEvent[] }> {
  if (!parked) return { total: 0, data: [] };
  const [total, data] = await Promise.all([parked.count(), parked.list(limit)]);
  return { total, data };
}

/**
 * Publishes parked events again and records who asked and what came of it: the outcome, and the
 * evidence event (dev.flowloom.outbox.event.redriven.v1 from `source`) for the caller's outbox.
 */
export async function redriveRecorded(
  parked: ParkedEvents | undefined,
  request: { actor: string; ids?: readonly string[] | undefined; source: string },
): Promise<{ outcome: RedriveOutcome; evidence: CloudEvent<OutboxEventRedriven> }> {
  const { actor, ids, source } = request;
  const outcome: RedriveOutcome = parked
    ? await parked.redrive(ids)
    : { requeued: 0, published: [], parkedAgain: [], pending: [] };
  const recorded: OutboxEventRedriven = { actor, ...(ids ? { requested: [...ids] } : {}), ...outcome };
  return { outcome, evidence: createEvent(OUTBOX_EVENT_REDRIVEN, source, recorded) };
}

import { createHash } from 'node:crypto';
import { canonicalBytes } from '@flowloom/ledger';
import { z } from 'zod';
import { type CloudEvent, createEvent } from './cloudevent.js';

// What an outbox relay publishes in place of an event the bus refused for good (too large for the
// topic, an invalid record): the event stays parked in the outbox, and this stand-in reaches the
// audit trail in its place, so the trail says that the event exists, what it hashes to and why it
// is missing, until an operator fixes the cause and publishes it again.

/** An event was parked in an outbox instead of published; the trail records its identity and hash. */
export const OUTBOX_EVENT_PARKED = 'dev.flowloom.outbox.event.parked.v1';

export const outboxEventParkedSchema = z.object({
  /** The parked event's own attributes: its id is how an auditor finds it once published again. */
  eventId: z.string(),
  eventType: z.string(),
  eventSource: z.string(),
  eventSubject: z.string().optional(),
  eventTime: z.string(),
  /** Size of the event's RFC 8785 canonical JSON, in bytes. */
  sizeBytes: z.number().int().nonnegative(),
  /** SHA-256 (hex) of the event's RFC 8785 canonical JSON, as stored in the outbox. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Why the bus refused it (e.g. `MESSAGE_TOO_LARGE: ...`). */
  reason: z.string().max(1000),
  /** Always `parked`: what happened, for filtering the trail by outcome. */
  outcome: z.literal('parked'),
});
export type OutboxEventParked = z.infer<typeof outboxEventParkedSchema>;

/** An admin published parked events again (each then reaches the trail itself, or is parked again). */
export const OUTBOX_EVENT_REDRIVEN = 'dev.flowloom.outbox.event.redriven.v1';

const eventIds = z.array(z.string()).max(1000);

export const outboxEventRedrivenSchema = z.object({
  /** The admin key that asked (`key/<id> (<name>)`). */
  actor: z.string(),
  /** The events asked for; absent when every parked event was. */
  requested: eventIds.optional(),
  requeued: z.number().int().nonnegative(),
  published: eventIds,
  parkedAgain: eventIds,
  pending: eventIds,
});
export type OutboxEventRedriven = z.infer<typeof outboxEventRedrivenSchema>;

export const outboxEventPayloadSchemas: Record<string, z.ZodType> = {
  [OUTBOX_EVENT_PARKED]: outboxEventParkedSchema,
  [OUTBOX_EVENT_REDRIVEN]: outboxEventRedrivenSchema,
};

/** The canonical bytes of an event; plain JSON for the rare event canonical JSON refuses (a lone surrogate). */
function bytesOf(event: CloudEvent): Uint8Array {
  try {
    return canonicalBytes(event);
  } catch {
    return Buffer.from(JSON.stringify(event), 'utf8');
  }
}

/** Size and SHA-256 (hex) of an event's canonical JSON: how the trail identifies a parked event. */
export function eventDigest(event: CloudEvent): { sizeBytes: number; sha256: string } {
  const bytes = bytesOf(event);
  return { sizeBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The stand-in for `event`, parked because of `reason`, published by `source` (the relay's service). */
export function parkedEventStandIn(
  event: CloudEvent,
  reason: string,
  source: string,
  now = Date.now(),
): CloudEvent<OutboxEventParked> {
  return createEvent(
    OUTBOX_EVENT_PARKED,
    source,
    {
      eventId: event.id,
      eventType: event.type,
      eventSource: event.source,
      ...(event.subject !== undefined ? { eventSubject: event.subject } : {}),
      eventTime: event.time,
      ...eventDigest(event),
      reason: reason.slice(0, 1000),
      outcome: 'parked',
    },
    event.subject,
    now,
  );
}

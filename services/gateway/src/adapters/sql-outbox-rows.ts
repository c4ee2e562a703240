import { parkingsOf, type RefusedEvent } from '@flowloom/bus';
import type { CloudEvent } from '@flowloom/contracts';
import type { Queryable } from '@flowloom/store';
import type { ParkedRow } from '../ports/parked-events.js';

/** Inserts events as outbox rows in one statement; an id already there is left as it is. */
export async function insertOutboxEvents(q: Queryable, events: readonly CloudEvent[]): Promise<void> {
  const rows = events.map((e) => ({ id: e.id, type: e.type, subject: e.subject ?? null, event: e }));
  await q.query(
    `insert into outbox (id, type, subject, event)
     select x.id::uuid, x.type, x.subject, x.event
     from jsonb_to_recordset($1::jsonb) as x(id text, type text, subject text, event jsonb)
     on conflict (id) do nothing`,
    [JSON.stringify(rows)],
  );
}

/**
 * Parks the refused events' rows (kept, never deleted by retention, skipped by the relay) and writes a
 * stand-in event for each into the outbox, in the same transaction: the relay publishes it like every
 * other event, so the audit trail records the parked event's identity and hash in its place.
 */
export async function parkRefused(
  tx: Queryable,
  events: readonly CloudEvent[],
  refused: readonly RefusedEvent[],
  source: string,
): Promise<ParkedRow[]> {
  const parked = parkingsOf(events, refused, source);
  for (const { event, reason } of parked)
    await tx.query('update outbox set parked_at = now(), park_reason = $2 where id = $1::uuid', [
      event.id,
      reason,
    ]);
  const standIns = parked.flatMap((p) => (p.standIn ? [p.standIn] : []));
  if (standIns.length > 0) await insertOutboxEvents(tx, standIns);
  return parked;
}

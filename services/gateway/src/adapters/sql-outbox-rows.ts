import type { RefusedEvent } from '@flowloom/bus';
import { type CloudEvent, OUTBOX_EVENT_PARKED, parkedEventStandIn } from '@flowloom/contracts';
import type { Queryable } from '@flowloom/store';

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

/** A row parked by the relay, for its log line and metric. */
export interface ParkedRow {
  event: CloudEvent;
  reason: string;
  /** The stand-in written for it; none for a refused stand-in (it would only be refused again). */
  standIn?: CloudEvent;
}

/**
 * Parks the refused rows (kept, never deleted by retention, skipped by the relay) and writes a
 * stand-in event for each into the outbox, in the same transaction: the relay publishes it like any
 * other event, so the audit trail records the parked event's identity and hash in its place.
 */
export async function parkRefused(
  tx: Queryable,
  rows: ReadonlyArray<{ seq: number; event: CloudEvent }>,
  refused: readonly RefusedEvent[],
  source: string,
): Promise<ParkedRow[]> {
  const reasons = new Map(refused.map((r) => [r.id, r.reason]));
  const parked: ParkedRow[] = [];
  for (const row of rows) {
    const reason = reasons.get(row.event.id);
    if (reason === undefined) continue;
    await tx.query('update outbox set parked_at = now(), park_reason = $2 where seq = $1', [row.seq, reason]);
    parked.push(
      row.event.type === OUTBOX_EVENT_PARKED
        ? { event: row.event, reason }
        : { event: row.event, reason, standIn: parkedEventStandIn(row.event, reason, source) },
    );
  }
  const standIns = parked.flatMap((p) => (p.standIn ? [p.standIn] : []));
  if (standIns.length > 0) await insertOutboxEvents(tx, standIns);
  return parked;
}

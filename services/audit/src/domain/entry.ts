import { createHash } from 'node:crypto';
import type { CloudEvent } from '@flowloom/contracts';
import { canonicalize, entryLeafHash } from '@flowloom/ledger';
import { jsonValue, mayHoldSecretText, scrubbedCanonicalJson, scrubText } from './scrub.js';

/** An event turned into a ledger entry plus the columns it is found by. */
export interface PreparedEntry {
  readonly eventId: string;
  /** RFC 8785 canonical JSON of the event, secrets removed: the bytes the log hashes. */
  readonly entry: string;
  readonly leafHash: Uint8Array;
  /** ISO time of the event (the time it reports, else when the ledger received it). */
  readonly time: string;
  readonly type: string;
  readonly source: string;
  readonly subject: string | null;
  readonly actor: string | null;
  readonly keyId: string | null;
  readonly project: string | null;
  readonly job: string | null;
  readonly outcome: string | null;
  readonly redactions: number;
}

const MAX_COLUMN = 500;
const MAX_ID = 200;

type WellFormed = { toWellFormed(): string };

/** Text safe for any PostgreSQL text column: well-formed UTF-16, no NUL, bounded. */
export function columnText(value: unknown, max = MAX_COLUMN): string | null {
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const text = (String(value) as unknown as WellFormed).toWellFormed().replace(/\0/g, '');
  if (text === '') return null;
  return text.length > max ? text.slice(0, max) : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first string among `fields` of `data`, or of its nested `decision` record. */
function pick(data: Record<string, unknown>, fields: readonly string[]): string | null {
  for (const field of fields) {
    const text = columnText(jsonValue(data[field]));
    if (text !== null) return text;
  }
  return null;
}

/**
 * What happened, in one word, for filtering by decision outcome:
 * a decision's verdict; an intervention's action; a key or job change's action or status; a failed
 * request's error code (e.g. `policy_blocked`, `rate_limited`); `completed` for a completed request;
 * or an explicit `outcome` field.
 */
export function outcomeOf(type: string, data: Record<string, unknown>): string | null {
  const explicit = pick(data, ['outcome', 'verdict']);
  if (explicit !== null) return explicit;
  const decision = jsonValue(data['decision']);
  if (isRecord(decision)) {
    const nested = pick(decision, ['outcome', 'verdict']);
    if (nested !== null) return nested;
  }
  if (type.endsWith('.request.failed.v1') || type.includes('.request.failed.'))
    return pick(data, ['errorCode']);
  if (type.includes('.request.completed.')) return 'completed';
  return pick(data, ['action', 'status', 'result']);
}

/** Who acted: an explicit actor, else the owner of the key that made the request. */
export function actorOf(data: Record<string, unknown>): string | null {
  return pick(data, ['actor', 'requestedBy', 'approvedBy', 'owner']);
}

function validTime(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/**
 * Turns a (possibly hostile or malformed) event into a ledger entry: secrets removed, canonical JSON
 * (RFC 8785). An event that cannot be canonicalised still leaves a trace: an entry recording its id,
 * type and why its content could not be logged, so nothing delivered disappears silently.
 */
export function prepareEntry(event: CloudEvent | Record<string, unknown>, receivedAt: Date): PreparedEntry {
  const top = jsonValue(event);
  const record: Record<string, unknown> = isRecord(top) ? top : { data: top };
  // Secret-named fields only, then one screen of the whole text for credential shapes; only when it
  // matches are the strings scrubbed one by one (every event passes here on the request path).
  let written = scrubbedCanonicalJson(record);
  let columnsFrom = record;
  if (written !== undefined && mayHoldSecretText(written.text)) {
    written = scrubbedCanonicalJson(record, { patterns: true });
    // Strings changed: the columns are read from what the entry holds.
    if (written !== undefined) columnsFrom = JSON.parse(written.text) as Record<string, unknown>;
  }
  if (written === undefined) {
    const entry = unloggableEntry(record, receivedAt);
    return describeEntry(
      JSON.parse(entry) as Record<string, unknown>,
      entry,
      entryLeafHash(entry),
      0,
      receivedAt,
    );
  }
  return describeEntry(
    columnsFrom,
    written.text,
    entryLeafHash(written.text),
    written.redactions,
    receivedAt,
  );
}

/** The stand-in entry of an event RFC 8785 cannot write (a string that is not well-formed Unicode). */
function unloggableEntry(record: Record<string, unknown>, receivedAt: Date): string {
  const text = (value: unknown, max?: number): string | null => {
    const column = columnText(jsonValue(value), max);
    return column === null ? null : scrubText(column).text;
  };
  return canonicalize({
    specversion: '1.0',
    id: text(record['id'], MAX_ID) ?? '',
    source: text(record['source']) ?? 'unknown',
    type: text(record['type']) ?? 'dev.flowloom.unknown.v1',
    time: validTime(jsonValue(record['time'])) ?? receivedAt.toISOString(),
    datacontenttype: 'application/json',
    data: {
      $unloggable:
        'a string or field name is not well-formed Unicode (a lone surrogate), which RFC 8785 cannot write',
    },
  });
}

/**
 * The entry with the columns it is found by, read from `record`: the event itself, its values read
 * as JSON writes them, or what the entry holds when scrubbing changed its strings.
 */
function describeEntry(
  record: Record<string, unknown>,
  entry: string,
  leafHash: Uint8Array,
  redactions: number,
  receivedAt: Date,
): PreparedEntry {
  const type = columnText(jsonValue(record['type'])) ?? 'dev.flowloom.unknown.v1';
  const id = jsonValue(record['id']);
  const time = validTime(jsonValue(record['time']));
  // An event without a usable id gets one derived from its content, so a redelivery still
  // deduplicates.
  const givenId = typeof id === 'string' ? columnText(id, MAX_ID) : null;
  const eventId = givenId ?? `sha256:${createHash('sha256').update(entry).digest('hex')}`;
  const data = jsonValue(record['data']);
  const fields = isRecord(data) ? data : {};
  return {
    eventId,
    entry,
    leafHash,
    time: time ?? receivedAt.toISOString(),
    type,
    source: columnText(jsonValue(record['source'])) ?? 'unknown',
    subject: columnText(jsonValue(record['subject'])),
    actor: actorOf(fields),
    keyId: pick(fields, ['keyId']),
    project: pick(fields, ['project']),
    job: pick(fields, ['job']),
    outcome: outcomeOf(type, fields),
    redactions,
  };
}

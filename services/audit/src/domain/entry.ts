import { createHash } from 'node:crypto';
import type { CloudEvent } from '@flowloom/contracts';
import { canonicalize, entryLeafHash } from '@flowloom/ledger';
import { mayHoldSecretText, scrubSecrets } from './scrub.js';

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
    const text = columnText(data[field]);
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
  const decision = data['decision'];
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
  // Fast path: secret-named fields only, then one screen of the whole text for credential shapes;
  // the string-by-string scrub runs only when the screen matches.
  let scrubResult = scrubSecrets(event, { patterns: false });
  let text = JSON.stringify(scrubResult.value);
  if (mayHoldSecretText(text)) {
    scrubResult = scrubSecrets(event);
    text = JSON.stringify(scrubResult.value);
  }
  const { value, redactions, canonical } = scrubResult;
  const scrubbed: Record<string, unknown> = isRecord(value) ? value : { data: value };
  const type = columnText(scrubbed['type']) ?? 'dev.flowloom.unknown.v1';
  let entry: string;
  let leaf: Uint8Array;
  try {
    // The scrubbed copy has sorted keys: JSON.stringify is then RFC 8785 (ECMAScript number and
    // string serialisation are the RFC's); the reference canonicaliser handles the rest.
    entry = canonical && isRecord(value) ? text : canonicalize(scrubbed);
    leaf = entryLeafHash(entry);
  } catch (error) {
    entry = canonicalize({
      specversion: '1.0',
      id: columnText(scrubbed['id'], MAX_ID) ?? '',
      source: columnText(scrubbed['source']) ?? 'unknown',
      type,
      time: validTime(scrubbed['time']) ?? receivedAt.toISOString(),
      datacontenttype: 'application/json',
      data: { $unloggable: (error as Error).message.slice(0, 500) },
    });
    leaf = entryLeafHash(entry);
  }
  // An event without a usable id gets one derived from its content, so a redelivery still
  // deduplicates.
  const givenId = typeof scrubbed['id'] === 'string' ? columnText(scrubbed['id'], MAX_ID) : null;
  const eventId = givenId ?? `sha256:${createHash('sha256').update(entry).digest('hex')}`;
  const data = isRecord(scrubbed['data']) ? scrubbed['data'] : {};
  return {
    eventId,
    entry,
    leafHash: leaf,
    time: validTime(scrubbed['time']) ?? receivedAt.toISOString(),
    type,
    source: columnText(scrubbed['source']) ?? 'unknown',
    subject: columnText(scrubbed['subject']),
    actor: actorOf(data),
    keyId: pick(data, ['keyId']),
    project: pick(data, ['project']),
    job: pick(data, ['job']),
    outcome: outcomeOf(type, data),
    redactions,
  };
}

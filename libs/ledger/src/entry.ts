import { LedgerError } from './errors.js';
import { leafHash, leafHashOfText } from './hash.js';

/** A log entry: the canonical JSON text of an event (UTF-8 encoded when given as a string). */
export type EntryInput = string | Uint8Array;

const NEWLINE = 0x0a;
/** Leading bytes of a pruned-entry marker in a bundle's entries.jsonl (see BUNDLE-FORMAT.md). */
export const PRUNED_MARKER_PREFIX = '{"$pruned":"';

export function entryBytes(entry: EntryInput): Uint8Array {
  return typeof entry === 'string' ? Buffer.from(entry, 'utf8') : entry;
}

/**
 * Rejects entries that could not be exported one per line, or that would read as a pruned marker,
 * so every logged entry has exactly one unambiguous line in an evidence bundle.
 */
export function assertLoggableEntry(bytes: Uint8Array, position = 0): void {
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(NEWLINE) !== -1) {
    throw new LedgerError(
      'invalid_argument',
      `entry ${position} contains a newline; entries are canonical JSON (RFC 8785), which never does`,
    );
  }
  if (startsWithMarker(bytes)) {
    throw new LedgerError('invalid_argument', `entry ${position} has the reserved pruned-marker form`);
  }
}

function startsWithMarker(bytes: Uint8Array): boolean {
  if (bytes.length < PRUNED_MARKER_PREFIX.length) return false;
  for (let i = 0; i < PRUNED_MARKER_PREFIX.length; i++) {
    if (bytes[i] !== PRUNED_MARKER_PREFIX.charCodeAt(i)) return false;
  }
  return true;
}

/** Leaf hash of an entry after checking it can be logged. */
export function entryLeafHash(entry: EntryInput, position = 0): Uint8Array {
  if (typeof entry === 'string') {
    // The same checks on the text: a newline byte only encodes '\n', and the marker is ASCII.
    if (entry.includes('\n') || entry.startsWith(PRUNED_MARKER_PREFIX)) {
      assertLoggableEntry(entryBytes(entry), position);
    }
    return leafHashOfText(entry);
  }
  assertLoggableEntry(entry, position);
  return leafHash(entry);
}

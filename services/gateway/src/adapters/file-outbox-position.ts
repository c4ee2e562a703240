import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { NEWLINE } from './file-outbox-spill.js';

/** Where a line of the log ends: byte `offset` of segment `segment` is the first byte after it. */
export interface LineEnd {
  segment: string;
  offset: number;
}

/**
 * How far the relay published: the sequence number of the last published event and, when known,
 * where its line ends. The byte position lets a start begin right there instead of counting the
 * lines before it, a count that a newline destroyed on disk would make come out short.
 */
export interface PublishedPosition {
  seq: number;
  end?: LineEnd;
}

const isOffset = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * Reads the position file: `{"seq":N,"segment":S,"offset":B}`, or the bare number that versions
 * before the byte position wrote (read on upgrade; the log is then counted as before). Unreadable:
 * nothing published yet, so everything in the log goes out again (consumers deduplicate).
 */
export function readPosition(path: string): PublishedPosition {
  if (!existsSync(path)) return { seq: 0 };
  const text = readFileSync(path, 'utf8').trim();
  if (/^\d+$/.test(text)) {
    const seq = Number(text);
    return { seq: Number.isSafeInteger(seq) ? seq : 0 };
  }
  try {
    const value = JSON.parse(text) as { seq?: unknown; segment?: unknown; offset?: unknown };
    if (!isOffset(value.seq)) return { seq: 0 };
    if (typeof value.segment !== 'string' || !isOffset(value.offset)) return { seq: value.seq };
    return { seq: value.seq, end: { segment: value.segment, offset: value.offset } };
  } catch {
    return { seq: 0 };
  }
}

/** Replaces the position file whole (through a rename), so a crash leaves the old one or the new. */
export function writePosition(path: string, position: PublishedPosition): void {
  const tmp = `${path}.tmp`;
  const { seq, end } = position;
  writeFileSync(tmp, JSON.stringify(end ? { seq, segment: end.segment, offset: end.offset } : { seq }));
  renameSync(tmp, path);
}

/**
 * The bytes of the file at `path` from `offset` on (undefined past its end), and whether the byte
 * before `offset` is a newline (or `offset` is the start). Nothing before that byte is read.
 */
export function readFromOffset(
  path: string,
  offset: number,
): { bytes: Buffer; afterNewline: boolean } | undefined {
  const fd = openSync(path, 'r');
  try {
    const { size } = fstatSync(fd);
    if (offset > size) return undefined;
    const from = Math.max(0, offset - 1);
    const bytes = Buffer.allocUnsafe(size - from);
    for (let read = 0; read < bytes.length; ) {
      const n = readSync(fd, bytes, read, bytes.length - read, from + read);
      // The file shrank while being read: no consistent view of it, so not a boundary to trust.
      if (n === 0) return undefined;
      read += n;
    }
    if (offset === 0) return { bytes, afterNewline: true };
    return { bytes: bytes.subarray(1), afterNewline: bytes[0] === NEWLINE };
  } finally {
    closeSync(fd);
  }
}

import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { CloudEvent } from '@flowloom/contracts';

/** An event of the log with its position in it: its sequence number, and where its line ends. */
export interface Pending {
  seq: number;
  event: CloudEvent;
  segment: string;
  /** The byte just after the event's line in `segment`: where the log goes on once it is published. */
  end: number;
}

/** Bytes `[start, end)` of segment `name`: `count` whole lines, one event each, from `firstSeq` on. */
interface Span {
  name: string;
  start: number;
  end: number;
  firstSeq: number;
  count: number;
}

/** What one read of spilled events gave: the events, and the lines of the span that held none. */
export interface Taken {
  events: Pending[];
  /** Lines that are no event (damaged after they were written) or missing from the file: skipped. */
  skipped: number;
  name: string;
}

export const NEWLINE = 0x0a;
const FIRST_READ_BYTES = 256 * 1024;

/**
 * The event on bytes `[start, end)` of a line, or undefined when they are not one (garbage, torn or
 * truncated JSON). A JSON value that is not an event object is refused too: the bus would fail on
 * it on every retry, and the relay would never get past it.
 */
export function parseEventLine(bytes: Buffer, start: number, end: number): CloudEvent | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8', start, end));
    if (typeof value !== 'object' || value === null) return undefined;
    const { id, type } = value as Partial<CloudEvent>;
    return typeof id === 'string' && typeof type === 'string' ? (value as CloudEvent) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Unpublished events the outbox holds only as positions in its segment files, so a backlog (the bus
 * or a consumer lagging for minutes) costs a few numbers per write, not the events themselves. The
 * spans are contiguous in sequence: the first one continues where the events held in memory end.
 */
export class SpilledEvents {
  private spans: Span[] = [];
  private total = 0;

  get count(): number {
    return this.total;
  }

  /** Records `count` events written as lines in `[start, end)` of `name`, numbered from `firstSeq`. */
  add(name: string, start: number, end: number, firstSeq: number, count: number): void {
    const last = this.spans[this.spans.length - 1];
    // Writes that follow each other in one file make one span; a gap (a damaged line skipped, a
    // failed write) starts a new one, so a span never holds a byte that is not an event's line.
    if (last && last.name === name && last.end === start && last.firstSeq + last.count === firstSeq) {
      last.end = end;
      last.count += count;
    } else {
      this.spans.push({ name, start, end, firstSeq, count });
    }
    this.total += count;
  }

  /**
   * Reads up to `max` lines of the earliest spilled events back from `dir` and forgets their
   * positions. A line that is no longer an event keeps its number (the numbering is by line) and is
   * counted in `skipped`, so a damaged file delays nothing behind it. Reads go on until `max` lines
   * or the span's end: a relay catching up hands the bus full batches (one read held about 128
   * request events, and each delivery costs the ledger a transaction).
   */
  async take(dir: string, max: number): Promise<Taken> {
    const span = this.spans[0];
    if (!span || max <= 0) return { events: [], skipped: 0, name: '' };
    // `add` may extend this span while the read waits: only the bytes known now are read.
    const end = span.end;
    const handle = await open(join(dir, span.name), 'r');
    const events: Pending[] = [];
    let lines = 0;
    let consumed = 0;
    try {
      let size = Math.min(FIRST_READ_BYTES, end - span.start);
      while (lines < max && lines < span.count && size > 0) {
        const at = span.start + consumed;
        const buffer = Buffer.allocUnsafe(size);
        const { bytesRead } = await handle.read(buffer, 0, size, at);
        let from = 0;
        let newline = buffer.indexOf(NEWLINE, 0);
        while (newline !== -1 && newline < bytesRead && lines < max && lines < span.count) {
          const event = parseEventLine(buffer, from, newline);
          if (event)
            events.push({ seq: span.firstSeq + lines, event, segment: span.name, end: at + newline + 1 });
          lines++;
          from = newline + 1;
          newline = buffer.indexOf(NEWLINE, from);
        }
        consumed += from;
        if (from > 0) {
          size = Math.min(FIRST_READ_BYTES, end - span.start - consumed);
          continue;
        }
        // No whole line in the read: the rest waits for the next take when this one has events.
        if (lines > 0) break;
        if (bytesRead < size || size >= end - at) {
          // The file ends (or its lines run together) before the events it recorded: nothing more
          // can come out of this span, and waiting on it would stop the relay for good.
          lines = span.count;
          break;
        }
        // One line longer than the read: read more at once.
        size = Math.min(size * 2, end - at);
      }
    } finally {
      await handle.close();
    }
    span.start += consumed;
    span.firstSeq += lines;
    span.count -= lines;
    this.total -= lines;
    if (span.count === 0) this.spans.shift();
    return { events, skipped: lines - events.length, name: span.name };
  }
}

import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { CloudEvent } from '@flowloom/contracts';

/** An event of the log with its position (sequence number) in it. */
export interface Pending {
  seq: number;
  event: CloudEvent;
}

/** Bytes `[start, end)` of segment `name`: `count` whole JSON lines, one event each, from `firstSeq` on. */
interface Span {
  name: string;
  start: number;
  end: number;
  firstSeq: number;
  count: number;
}

const NEWLINE = 0x0a;
const FIRST_READ_BYTES = 256 * 1024;

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
    // Writes that follow each other in one file make one span; a gap (a torn line skipped, a
    // failed write) starts a new one, so a span never holds a byte that is not an event's line.
    if (last && last.name === name && last.end === start && last.firstSeq + last.count === firstSeq) {
      last.end = end;
      last.count += count;
    } else {
      this.spans.push({ name, start, end, firstSeq, count });
    }
    this.total += count;
  }

  /** Reads up to `max` of the earliest spilled events back from `dir` and forgets their positions. */
  async take(dir: string, max: number): Promise<Pending[]> {
    const span = this.spans[0];
    if (!span || max <= 0) return [];
    // `add` may extend this span while the read waits: only the bytes known now are read.
    const end = span.end;
    const handle = await open(join(dir, span.name), 'r');
    const taken: Pending[] = [];
    let consumed = 0;
    try {
      let size = Math.min(FIRST_READ_BYTES, end - span.start);
      while (taken.length === 0) {
        const buffer = Buffer.allocUnsafe(size);
        const { bytesRead } = await handle.read(buffer, 0, size, span.start);
        let from = 0;
        let newline = buffer.indexOf(NEWLINE, 0);
        while (newline !== -1 && newline < bytesRead && taken.length < max) {
          const event = JSON.parse(buffer.toString('utf8', from, newline)) as CloudEvent;
          taken.push({ seq: span.firstSeq + taken.length, event });
          from = newline + 1;
          newline = buffer.indexOf(NEWLINE, from);
        }
        consumed = from;
        if (taken.length > 0) break;
        if (bytesRead < size || size >= end - span.start) {
          throw new Error(`outbox segment ${span.name} ends before the events it recorded`);
        }
        // One line longer than the read: read more at once.
        size = Math.min(size * 2, end - span.start);
      }
    } finally {
      await handle.close();
    }
    span.start += consumed;
    span.firstSeq += taken.length;
    span.count -= taken.length;
    this.total -= taken.length;
    if (span.count === 0) this.spans.shift();
    return taken;
  }
}

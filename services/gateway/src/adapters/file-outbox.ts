import { mkdirSync, readdirSync, readFileSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { type EventBus, parkingsOf, publishExceptRefused, type RefusedEvent } from '@flowloom/bus';
import type { CloudEvent } from '@flowloom/contracts';
import { OneAtATime, RelayLoop } from '@flowloom/outbox';
import type { Outbox } from '../ports/outbox.js';
import type { ParkedRow } from '../ports/parked-events.js';
import { FileParkedEvents, ParkedFile } from './file-outbox-parking.js';
import { type LineEnd, readFromOffset, readPosition, writePosition } from './file-outbox-position.js';
import { NEWLINE, type Pending, parseEventLine, SpilledEvents } from './file-outbox-spill.js';

export type FsyncMode = 'always' | 'interval' | 'never';

export interface FileOutboxOptions {
  /**
   * `always`: fdatasync before an append resolves (survives power loss; costs a disk flush per group
   * commit). `interval` (default): the append resolves once the OS has the bytes (survives a crash
   * or kill of the process) and a flush follows within `fsyncIntervalMs`. `never`: leave it to the OS.
   */
  fsync?: FsyncMode;
  fsyncIntervalMs?: number;
  /** A segment file is closed and a new one started past this size. */
  segmentBytes?: number;
  onError?: (error: unknown) => void;
  /** Damage found on disk and set aside (a torn last line, unreadable lines): not an error to retry. */
  onDamage?: (message: string) => void;
  /** The least time between the starts of two rounds of the relay while partial batches come (ms). */
  gatherMs?: number;
  /**
   * At most this many unpublished events are held in memory; past it (consumers lagging) only their
   * positions in the segment files are, and the relay reads them back from there when it gets to them.
   */
  maxBufferedEvents?: number;
  /** An event the bus refused for good was parked (in `<dir>/parked.jsonl`), its stand-in appended. */
  onParked?: (parked: ParkedRow) => void;
  /** The source of the stand-in events of parked ones (the relaying service). */
  source?: string;
}

interface Waiter {
  events: readonly CloudEvent[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Where the relay delivers: the bus, or (as the PostgreSQL outbox's spool) the database outbox. */
export type EventSink = Pick<EventBus, 'publish'>;

/** Whether `bytes` begin with a whole line (up to a newline) that is an event. */
function startsWithEvent(bytes: Buffer): boolean {
  const end = bytes.indexOf(NEWLINE);
  return end > 0 && parseEventLine(bytes, 0, end) !== undefined;
}

const SEGMENT = /^(\d{20})\.jsonl$/;
const segmentName = (firstSeq: number): string => `${String(firstSeq).padStart(20, '0')}.jsonl`;

interface Segment {
  firstSeq: number;
  name: string;
}

/** Events handed to the bus in one publish call. */
const PUBLISH_BATCH = 1000;

/**
 * The embedded outbox: an append-only log of JSON lines in `dir` with group commit, and a relay that
 * publishes to the in-process bus and records how far it got. It replaces a database table on the
 * hot path because one append call per batch costs microseconds, where an embedded (WASM) database
 * costs milliseconds of the same CPU that serves requests. On start, everything after the recorded
 * position is published again (consumers deduplicate by event id), so a crash delays, never drops.
 *
 * An event's sequence number is its segment's first one plus the count of whole lines (ending in a
 * newline) before it, and the recorded position is such a number. So a segment never holds a line
 * that was not counted when it was written: a write that fails is cut off again, and a torn last
 * line (a crash mid-write) is cut off when the log is opened. A line damaged later still counts: the
 * lines after it keep their numbers, and it is skipped (reported) if it was not yet published.
 * The position also holds the byte where the last published line ends, and a start reads from
 * there: counting the published lines would cost a read of the segment, and come out short if a
 * newline among them was destroyed on disk, numbering the first unpublished event as published.
 */
export class FileOutbox implements Outbox {
  private handle: FileHandle | undefined;
  private segmentSize = 0;
  private nextSeq = 1;
  private queue: Waiter[] = [];
  private writing = false;
  /** The earliest unpublished events; the later ones are in `spilled` once this holds the cap. */
  private unpublished: Pending[] = [];
  private readonly spilled = new SpilledEvents();
  private segmentName = '';
  private segmentFirstSeq = 1;
  /** A write failed and the bytes it may have left after `segmentSize` are not cut off yet. */
  private tailDirty = false;
  private skipped = 0;
  private publishedSeq = 0;
  /** Where the line of event `publishedSeq` ends, when known (not after an upgrade that found none). */
  private publishedEnd: LineEnd | undefined;
  private segments: Segment[] = [];
  private readonly relay: RelayLoop;
  private syncTimer: NodeJS.Timeout | undefined;
  private positionTimer: NodeJS.Timeout | undefined;
  private readonly publishing = new OneAtATime();
  private dirty = false;
  private readonly fsync: FsyncMode;
  private readonly segmentBytes: number;
  private readonly maxBuffered: number;
  private readonly parkedFile: ParkedFile;
  /** Events the bus refused for good, set aside with a stand-in on the trail, to publish again. */
  readonly parked: FileParkedEvents;

  private constructor(
    private readonly dir: string,
    private readonly bus: EventSink,
    private readonly options: FileOutboxOptions,
  ) {
    this.fsync = options.fsync ?? 'interval';
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.maxBuffered = Math.max(1, options.maxBufferedEvents ?? 4096);
    this.relay = new RelayLoop({
      round: async () => {
        await this.publishRound();
        return this.backlog === 0 ? 'nothing' : this.backlog >= PUBLISH_BATCH ? 'batches' : 'some';
      },
      gatherMs: options.gatherMs ?? 100,
      // Nothing else writes this log: the poll only backs up the notices of appends.
      idleMs: 1_000,
      backOffMs: 500,
      onError: (error) => this.options.onError?.(error),
    });
    this.parkedFile = new ParkedFile(join(dir, 'parked.jsonl'));
    this.parked = new FileParkedEvents(this.parkedFile, this);
  }

  /** Opens the log in `dir`, loading what was written but not yet published. */
  static async open(dir: string, bus: EventSink, options: FileOutboxOptions = {}): Promise<FileOutbox> {
    const outbox = new FileOutbox(dir, bus, options);
    await outbox.recover();
    return outbox;
  }

  private positionFile(): string {
    return join(this.dir, 'published');
  }

  private async recover(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const recorded = readPosition(this.positionFile());
    this.publishedSeq = recorded.seq;
    this.segments = readdirSync(this.dir)
      .map((name) => SEGMENT.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ firstSeq: Number(m[1]), name: m[0] }))
      .sort((a, b) => a.firstSeq - b.firstSeq);
    let seq = 1;
    for (let i = 0; i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      const next = this.segments[i + 1];
      // A segment wholly published is not read again: whatever happened to it since changes nothing.
      if (next && next.firstSeq - 1 <= this.publishedSeq) continue;
      seq = this.recoverSegment(segment, recorded.end);
    }
    this.nextSeq = Math.max(seq, this.publishedSeq + 1);
    await this.openSegment();
  }

  /**
   * Keeps the unpublished events of one segment; returns the number after its last line. From the
   * recorded end of the published lines when it is in this segment and fits it, else (a position
   * written before byte positions were, or damaged) by counting the segment's lines from its start.
   */
  private recoverSegment(segment: Segment, recorded: LineEnd | undefined): number {
    const path = join(this.dir, segment.name);
    if (recorded?.segment === segment.name) {
      const read = this.fits(segment, recorded.offset) ? readFromOffset(path, recorded.offset) : undefined;
      // A line boundary; or, when the newline ending the last published line was destroyed (counting
      // would then come out one short), the recorded byte still starts an event.
      const holds = read !== undefined && (read.afterNewline || startsWithEvent(read.bytes));
      if (read && holds) {
        if (!read.afterNewline)
          this.reportDamage(
            `outbox: the newline before byte ${recorded.offset} of segment ${segment.name} (the end of published event ${this.publishedSeq}) is damaged; the events after it go out as recorded`,
          );
        this.publishedEnd = recorded;
        return this.keepLines(segment, read.bytes, recorded.offset, this.publishedSeq + 1);
      }
      this.reportDamage(
        `outbox: the recorded published position (byte ${recorded.offset} of segment ${segment.name}, event ${this.publishedSeq}) is no line boundary of that segment; counting its lines instead`,
      );
    }
    if (segment.firstSeq - 1 === this.publishedSeq) this.publishedEnd = { segment: segment.name, offset: 0 };
    return this.keepLines(segment, readFileSync(path), 0, segment.firstSeq);
  }

  /**
   * Whether `publishedSeq` can end at byte `offset` of the segment: as many lines before it as the
   * numbers say were published there, each at least an event and its newline.
   */
  private fits(segment: Segment, offset: number): boolean {
    const lines = this.publishedSeq - segment.firstSeq + 1;
    return lines >= 0 && (lines === 0) === (offset === 0) && 2 * lines <= offset;
  }

  /**
   * Keeps the unpublished events on `bytes`, which are the segment's from byte `base` on, its first
   * line numbered `firstSeq`; returns the number after the last line.
   */
  private keepLines(segment: Segment, bytes: Buffer, base: number, firstSeq: number): number {
    let seq = firstSeq;
    let start = 0;
    let damaged = 0;
    for (let end = bytes.indexOf(NEWLINE); end !== -1; end = bytes.indexOf(NEWLINE, start)) {
      const lineStart = start;
      start = end + 1;
      // An empty line was never an event nor numbered (older versions wrote them after a torn line).
      if (end === lineStart) continue;
      const lineSeq = seq++;
      // Published lines are only counted, never parsed: a damaged one must not hold up the rest.
      if (lineSeq <= this.publishedSeq) {
        if (lineSeq === this.publishedSeq)
          this.publishedEnd = { segment: segment.name, offset: base + start };
        continue;
      }
      const event = parseEventLine(bytes, lineStart, end);
      if (event)
        this.keep({ seq: lineSeq, event, segment: segment.name, end: base + start }, base + lineStart);
      else damaged++;
    }
    if (damaged > 0) this.reportSkipped(damaged, segment.name);
    if (start < bytes.length) {
      // Bytes after the last newline are a write a crash interrupted: never acknowledged, never
      // numbered. Cut off, so that the next line appended to the segment starts clean.
      truncateSync(join(this.dir, segment.name), base + start);
      this.reportDamage(
        `outbox: dropped a torn last line (${bytes.length - start} bytes) of segment ${segment.name}`,
      );
    }
    return seq;
  }

  private reportSkipped(lines: number, name: string): void {
    this.skipped += lines;
    this.reportDamage(
      `outbox: skipped ${lines} unreadable line(s) of segment ${name}, never published (damaged on disk)`,
    );
  }

  private reportDamage(message: string): void {
    if (this.options.onDamage) this.options.onDamage(message);
    else this.options.onError?.(new Error(message));
  }

  /** Holds an unpublished event in memory while under the cap and nothing is spilled, else its position. */
  private keep(item: Pending, start: number): void {
    if (this.spilled.count === 0 && this.unpublished.length < this.maxBuffered) this.unpublished.push(item);
    else this.spilled.add(item.segment, start, item.end, item.seq, 1);
  }

  private async openSegment(): Promise<void> {
    const name = segmentName(this.nextSeq);
    // Opened before the current one is closed: if it cannot be, appends go on in the current one.
    const handle = await open(join(this.dir, name), 'a');
    let size: number;
    try {
      ({ size } = await handle.stat());
    } catch (error) {
      await handle.close();
      throw error;
    }
    const previous = this.handle;
    this.handle = handle;
    this.segmentName = name;
    this.segmentFirstSeq = this.nextSeq;
    // Zero but for the last segment of a previous run when it held no whole line (its torn tail cut).
    this.segmentSize = size;
    if (!this.segments.some((s) => s.name === name)) this.segments.push({ firstSeq: this.nextSeq, name });
    // The pending interval flush would reach only the new segment: flush the last writes of this one.
    if (previous && this.dirty) await previous.datasync().catch((e: unknown) => this.options.onError?.(e));
    await previous?.close();
  }

  append(events: readonly CloudEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      if (this.writing) return;
      // One write for every append of this event-loop turn (group commit): `writing` covers the
      // wait too, so close() waits for it.
      this.writing = true;
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const lines: string[] = [];
        const added: CloudEvent[] = [];
        // Each line's bytes, newline included: they add up to the write and give each event its end.
        const lineBytes: number[] = [];
        let length = 0;
        for (const waiter of batch) {
          for (const event of waiter.events) {
            const line = JSON.stringify(event);
            const bytes = Buffer.byteLength(line) + 1;
            lines.push(line);
            lineBytes.push(bytes);
            length += bytes;
            added.push(event);
          }
        }
        const text = `${lines.join('\n')}\n`;
        try {
          if (this.tailDirty) await this.cutFailedWrite();
          if (this.segmentSize > this.segmentBytes) await this.openSegment();
          // A synchronous write: it only hands bytes to the page cache (microseconds), where the
          // promise API would wake a libuv pool thread and then the event loop again for each group
          // commit; at a steady 500 req/s that was two thread switches per request on 2 shared cores.
          const bytesWritten = writeSync(this.handle!.fd, text);
          // A short write (disk full, file size limit) is not an error by itself: finish or fail.
          if (bytesWritten < length) this.writeRest(text, bytesWritten);
          if (this.fsync === 'always') await this.handle!.datasync();
          else this.scheduleSync();
          const start = this.segmentSize;
          this.segmentSize += length;
          const firstSeq = this.nextSeq;
          this.nextSeq += added.length;
          const room = this.spilled.count === 0 ? Math.max(0, this.maxBuffered - this.unpublished.length) : 0;
          if (room >= added.length) {
            // Each event's line end goes with it, to record as the position once it is published.
            let end = start;
            for (let i = 0; i < added.length; i++) {
              end += lineBytes[i]!;
              this.unpublished.push({ seq: firstSeq + i, event: added[i]!, segment: this.segmentName, end });
            }
          } else {
            // Past the cap the whole write is kept as its byte range: the file already has the events.
            this.spilled.add(this.segmentName, start, this.segmentSize, firstSeq, added.length);
          }
          for (const waiter of batch) waiter.resolve();
          this.relay.notify();
        } catch (error) {
          for (const waiter of batch) waiter.reject(error);
          this.tailDirty = true;
          await this.cutFailedWrite().catch((e: unknown) => this.options.onError?.(e));
        }
      }
    } finally {
      this.writing = false;
    }
  }

  /** Writes what a short write left out; throws if the file system still takes nothing. */
  private writeRest(text: string, written: number): void {
    const bytes = Buffer.from(text);
    for (let offset = written; offset < bytes.length; ) {
      const bytesWritten = writeSync(this.handle!.fd, bytes, offset, bytes.length - offset);
      if (bytesWritten === 0) throw new Error('outbox: the file system took no bytes of a write');
      offset += bytesWritten;
    }
  }

  /**
   * Cuts the segment back to its last whole write: lines of a failed (rejected) write must not take
   * numbers that later events get. Appends then go on in a new segment if this one holds events, so
   * a per-file size limit or a bad block is left behind.
   */
  private async cutFailedWrite(): Promise<void> {
    await this.handle!.truncate(this.segmentSize);
    this.tailDirty = false;
    if (this.nextSeq > this.segmentFirstSeq) await this.openSegment();
  }

  private scheduleSync(): void {
    if (this.fsync !== 'interval') return;
    this.dirty = true;
    this.syncTimer ??= setTimeout(() => {
      this.syncTimer = undefined;
      if (!this.dirty) return;
      this.dirty = false;
      this.handle?.datasync().catch((error: unknown) => this.options.onError?.(error));
    }, this.options.fsyncIntervalMs ?? 50);
  }

  /** Publishes everything pending now; returns how many events went out. */
  publishPending(): Promise<number> {
    return this.publishSerially(true);
  }

  /** One relay round: what is pending, then more only while whole batches are waiting. */
  private publishRound(): Promise<number> {
    return this.publishSerially(false);
  }

  private publishSerially(untilEmpty: boolean): Promise<number> {
    return this.publishing.run(() => this.publishNow(untilEmpty));
  }

  private async publishNow(untilEmpty: boolean): Promise<number> {
    let total = 0;
    for (;;) {
      if (this.unpublished.length === 0) {
        if (this.spilled.count === 0) break;
        const taken = await this.spilled.take(this.dir, PUBLISH_BATCH);
        if (taken.skipped > 0) this.reportSkipped(taken.skipped, taken.name);
        // An append that landed while the read waited came after every spilled event.
        this.unpublished = taken.events.concat(this.unpublished);
        if (this.unpublished.length === 0) continue;
      }
      const batch = this.unpublished.slice(0, PUBLISH_BATCH);
      const refused = await publishExceptRefused(
        this.bus,
        batch.map((p) => p.event),
      );
      if (refused.length > 0) await this.park(batch, refused);
      this.unpublished.splice(0, batch.length);
      const last = batch[batch.length - 1]!;
      this.publishedSeq = last.seq;
      this.publishedEnd = { segment: last.segment, offset: last.end };
      total += batch.length;
      if (!untilEmpty && this.unpublished.length < PUBLISH_BATCH && this.spilled.count === 0) break;
    }
    if (total > 0) this.schedulePosition();
    return total;
  }

  /**
   * Sets the refused events aside, durably, and appends a stand-in for each to the log before the
   * position moves past them: a crash in between parks them again on restart, never loses them.
   */
  private async park(batch: readonly Pending[], refused: readonly RefusedEvent[]): Promise<void> {
    const parked = parkingsOf(
      batch.map((p) => p.event),
      refused,
      this.options.source ?? 'flowloom/gateway',
    );
    await this.parkedFile.add(parked.map(({ event, reason }) => ({ event, reason })));
    await this.append(parked.flatMap((p) => (p.standIn ? [p.standIn] : [])));
    for (const p of parked) this.options.onParked?.(p);
  }

  /**
   * The position is a hint for restarts, so it is written at most once a second: losing the last
   * second of it only republishes events that consumers deduplicate anyway.
   */
  private schedulePosition(): void {
    if (this.positionTimer) return;
    this.positionTimer = setTimeout(() => {
      this.positionTimer = undefined;
      this.recordPosition();
    }, 1_000);
  }

  private recordPosition(): void {
    writePosition(
      this.positionFile(),
      this.publishedEnd ? { seq: this.publishedSeq, end: this.publishedEnd } : { seq: this.publishedSeq },
    );
    // Segments wholly published are no longer needed (the ledger and the bus hold the events now).
    const current = this.segments[this.segments.length - 1];
    for (let i = 0; i < this.segments.length - 1; i++) {
      const next = this.segments[i + 1]!;
      const segment = this.segments[i]!;
      if (next.firstSeq - 1 <= this.publishedSeq && segment !== current) {
        unlinkSync(join(this.dir, segment.name));
        this.segments.splice(i, 1);
        i--;
      }
    }
  }

  start(): void {
    this.relay.start();
  }

  /** The sink answers again (the spool's database is back): publish now, not after the back-off. */
  wake(): void {
    this.relay.retryNow();
  }

  get backlog(): number {
    return this.unpublished.length + this.spilled.count;
  }

  /** Lines found damaged (or missing) since the log was opened, skipped instead of published. */
  get skippedLines(): number {
    return this.skipped;
  }

  /** Unpublished events held in memory (the rest of the backlog is read back from the log). */
  get buffered(): number {
    return this.unpublished.length;
  }

  /** The backlog, in the shape every relayed outbox reports it (the SQL one counts rows). */
  pendingCount(): Promise<number> {
    return Promise.resolve(this.backlog);
  }

  /** Stops the relay after publishing what it can, flushes and closes the log. */
  async close(): Promise<void> {
    await this.relay.stop();
    while (this.writing) await new Promise((r) => setImmediate(r));
    try {
      await this.publishPending();
    } catch (error) {
      this.options.onError?.(error);
    }
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.positionTimer) clearTimeout(this.positionTimer);
    this.positionTimer = undefined;
    this.recordPosition();
    await this.handle?.datasync().catch(() => {});
    await this.handle?.close();
    this.handle = undefined;
  }
}

import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventBus } from '@flowloom/bus';
import type { CloudEvent } from '@flowloom/contracts';
import type { Outbox } from '../ports/outbox.js';
import { type Pending, SpilledEvents } from './file-outbox-spill.js';

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
  /** How long the relay waits after an append to gather a batch (ms). */
  gatherMs?: number;
  /**
   * At most this many unpublished events are held in memory; past it (consumers lagging) only their
   * positions in the segment files are, and the relay reads them back from there when it gets to them.
   */
  maxBufferedEvents?: number;
}

interface Waiter {
  events: readonly CloudEvent[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Where the relay delivers: the bus, or (as the PostgreSQL outbox's spool) the database outbox. */
export type EventSink = Pick<EventBus, 'publish'>;

const SEGMENT = /^(\d{20})\.jsonl$/;
const segmentName = (firstSeq: number): string => `${String(firstSeq).padStart(20, '0')}.jsonl`;
const NEWLINE = 0x0a;
/** Events handed to the bus in one publish call. */
const PUBLISH_BATCH = 1000;

/**
 * The embedded outbox: an append-only log of JSON lines in `dir` with group commit, and a relay that
 * publishes to the in-process bus and records how far it got. It replaces a database table on the
 * hot path because one append call per batch costs microseconds, where an embedded (WASM) database
 * costs milliseconds of the same CPU that serves requests. On start, everything after the recorded
 * position is published again (consumers deduplicate by event id), so a crash delays, never drops.
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
  private publishedSeq = 0;
  private segments: Array<{ firstSeq: number; name: string }> = [];
  private relayRunning = false;
  private relayLoop: Promise<void> | undefined;
  private wakeRelay: (() => void) | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private positionTimer: NodeJS.Timeout | undefined;
  private publishing: Promise<void> = Promise.resolve();
  private dirty = false;
  private readonly fsync: FsyncMode;
  private readonly segmentBytes: number;
  private readonly maxBuffered: number;

  private constructor(
    private readonly dir: string,
    private readonly bus: EventSink,
    private readonly options: FileOutboxOptions,
  ) {
    this.fsync = options.fsync ?? 'interval';
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.maxBuffered = Math.max(1, options.maxBufferedEvents ?? 4096);
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
    if (existsSync(this.positionFile())) {
      const value = Number(readFileSync(this.positionFile(), 'utf8').trim());
      if (Number.isSafeInteger(value) && value >= 0) this.publishedSeq = value;
    }
    this.segments = readdirSync(this.dir)
      .map((name) => SEGMENT.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ firstSeq: Number(m[1]), name: m[0] }))
      .sort((a, b) => a.firstSeq - b.firstSeq);
    let seq = this.segments[0]?.firstSeq ?? 1;
    for (const segment of this.segments) {
      seq = segment.firstSeq;
      const bytes = readFileSync(join(this.dir, segment.name));
      let start = 0;
      while (start < bytes.length) {
        let end = bytes.indexOf(NEWLINE, start);
        if (end === -1) end = bytes.length;
        const lineStart = start;
        start = end + 1;
        if (end === lineStart) continue;
        let event: CloudEvent;
        try {
          event = JSON.parse(bytes.toString('utf8', lineStart, end)) as CloudEvent;
        } catch {
          // A torn last line (crash mid-write) was never acknowledged: drop it.
          continue;
        }
        if (seq > this.publishedSeq) this.keep({ seq, event }, segment.name, lineStart, end + 1);
        seq++;
      }
    }
    this.nextSeq = Math.max(seq, this.publishedSeq + 1);
    await this.openSegment();
  }

  /** Holds an unpublished event in memory while under the cap and nothing is spilled, else its position. */
  private keep(item: Pending, name: string, start: number, end: number): void {
    if (this.spilled.count === 0 && this.unpublished.length < this.maxBuffered) this.unpublished.push(item);
    else this.spilled.add(name, start, end, item.seq, 1);
  }

  private async openSegment(): Promise<void> {
    await this.handle?.close();
    const name = segmentName(this.nextSeq);
    this.segmentName = name;
    if (!this.segments.some((s) => s.name === name)) this.segments.push({ firstSeq: this.nextSeq, name });
    // Start every segment at a line boundary, even after a torn write in the previous one.
    this.handle = await open(join(this.dir, name), 'a');
    const { size } = await this.handle.stat();
    this.segmentSize = size;
    if (size > 0) {
      await this.handle.write('\n');
      this.segmentSize++;
    }
  }

  append(events: readonly CloudEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        let text = '';
        const added: CloudEvent[] = [];
        for (const waiter of batch) {
          for (const event of waiter.events) {
            text += `${JSON.stringify(event)}\n`;
            added.push(event);
          }
        }
        try {
          if (this.segmentSize > this.segmentBytes) await this.openSegment();
          await this.handle!.write(text);
          if (this.fsync === 'always') await this.handle!.datasync();
          else this.scheduleSync();
          const start = this.segmentSize;
          this.segmentSize += Buffer.byteLength(text);
          const firstSeq = this.nextSeq;
          this.nextSeq += added.length;
          const room = this.spilled.count === 0 ? Math.max(0, this.maxBuffered - this.unpublished.length) : 0;
          if (room >= added.length) {
            for (let i = 0; i < added.length; i++)
              this.unpublished.push({ seq: firstSeq + i, event: added[i]! });
          } else {
            // Past the cap the whole write is kept as its byte range: the file already has the events.
            this.spilled.add(this.segmentName, start, this.segmentSize, firstSeq, added.length);
          }
          for (const waiter of batch) waiter.resolve();
          this.wakeRelay?.();
        } catch (error) {
          for (const waiter of batch) waiter.reject(error);
          // A failed write may have left a partial line: continue in a fresh segment.
          await this.openSegment().catch((e: unknown) => this.options.onError?.(e));
        }
      }
    } finally {
      this.writing = false;
    }
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
    // One publisher at a time: the relay loop and an explicit flush must not take the same batch.
    const run = this.publishing.then(() => this.publishNow());
    this.publishing = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async publishNow(): Promise<number> {
    let total = 0;
    for (;;) {
      if (this.unpublished.length === 0) {
        if (this.spilled.count === 0) break;
        const taken = await this.spilled.take(this.dir, PUBLISH_BATCH);
        // An append that landed while the read waited came after every spilled event.
        this.unpublished = taken.concat(this.unpublished);
      }
      const batch = this.unpublished.slice(0, PUBLISH_BATCH);
      await this.bus.publish(batch.map((p) => p.event));
      this.unpublished.splice(0, batch.length);
      this.publishedSeq = batch[batch.length - 1]!.seq;
      total += batch.length;
    }
    if (total > 0) this.schedulePosition();
    return total;
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
    const tmp = `${this.positionFile()}.tmp`;
    writeFileSync(tmp, String(this.publishedSeq));
    renameSync(tmp, this.positionFile());
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
    if (this.relayRunning) return;
    this.relayRunning = true;
    this.relayLoop = this.runRelay();
  }

  wake(): void {
    this.wakeRelay?.();
  }

  get backlog(): number {
    return this.unpublished.length + this.spilled.count;
  }

  /** Unpublished events held in memory (the rest of the backlog is read back from the log). */
  get buffered(): number {
    return this.unpublished.length;
  }

  /** The backlog, in the shape every relayed outbox reports it (the SQL one counts rows). */
  pendingCount(): Promise<number> {
    return Promise.resolve(this.backlog);
  }

  private async runRelay(): Promise<void> {
    let failures = 0;
    while (this.relayRunning) {
      try {
        await this.publishPending();
        failures = 0;
      } catch (error) {
        failures++;
        this.options.onError?.(error);
      }
      if (!this.relayRunning) break;
      if (this.backlog > 0 && failures === 0) continue;
      const wait = failures > 0 ? Math.min(30_000, 250 * 2 ** Math.min(failures, 7)) : 1_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wakeRelay = () => {
          clearTimeout(timer);
          this.wakeRelay = undefined;
          // Let a burst of appends gather before publishing: consumers (the audit ledger, decision
          // stores) pay per batch, so larger batches cost the request path less CPU.
          setTimeout(resolve, this.options.gatherMs ?? 100);
        };
      });
    }
  }

  /** Stops the relay after publishing what it can, flushes and closes the log. */
  async close(): Promise<void> {
    this.relayRunning = false;
    this.wakeRelay?.();
    await this.relayLoop;
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

import { existsSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { type CloudEvent, eventDigest, uuidv7 } from '@flowloom/contracts';
import type { ParkedEvent, ParkedEvents, RedriveOutcome } from '../ports/parked-events.js';

/** One parking of an event; `entry` tells two parkings of one event apart. */
export interface ParkedEntry {
  entry: string;
  event: CloudEvent;
  reason: string;
  parkedAt: string;
}

/**
 * The embedded outbox's parked events: a JSON-lines file beside its segments, which the log's pruning
 * never deletes. Each write is flushed to disk before it resolves, and writes run one at a time, so a
 * redrive removing entries never drops one the relay adds meanwhile.
 */
export class ParkedFile {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly path: string) {}

  /** Entries oldest first; a damaged line is passed over (its event is still described on the trail). */
  read(): ParkedEntry[] {
    if (!existsSync(this.path)) return [];
    const entries: ParkedEntry[] = [];
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        const entry = JSON.parse(line) as ParkedEntry;
        if (typeof entry.entry === 'string' && typeof entry.event?.id === 'string') entries.push(entry);
      } catch {
        // A torn last line (a crash mid-write): that parking is written again when the relay retries.
      }
    }
    return entries;
  }

  add(parked: ReadonlyArray<{ event: CloudEvent; reason: string }>): Promise<void> {
    const parkedAt = new Date().toISOString();
    const lines = parked.map((p) => `${JSON.stringify({ entry: uuidv7(), parkedAt, ...p })}\n`).join('');
    return this.serial(() => this.write(lines, 'a', this.path));
  }

  /** Removes exactly these entries (by `entry`), rewriting the file through a flushed rename. */
  remove(entries: readonly ParkedEntry[]): Promise<void> {
    const gone = new Set(entries.map((e) => e.entry));
    return this.serial(async () => {
      const kept = this.read().filter((e) => !gone.has(e.entry));
      const tmp = `${this.path}.tmp`;
      await this.write(kept.map((e) => `${JSON.stringify(e)}\n`).join(''), 'w', tmp);
      await rename(tmp, this.path);
    });
  }

  private async write(text: string, flags: 'a' | 'w', path: string): Promise<void> {
    const handle = await open(path, flags);
    try {
      await handle.writeFile(text);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => {});
    return run;
  }
}

/**
 * Parked events of the embedded outbox. Publishing again appends them to the log (after everything
 * pending) and only then drops their parking entries, so a crash in between publishes one twice
 * (consumers deduplicate by id) rather than losing it.
 */
export class FileParkedEvents implements ParkedEvents {
  constructor(
    private readonly file: ParkedFile,
    private readonly outbox: {
      append(events: readonly CloudEvent[]): Promise<void>;
      publishPending(): Promise<number>;
    },
  ) {}

  /** The last parking of each event still parked, oldest first. */
  private current(): ParkedEntry[] {
    return [...new Map(this.file.read().map((e) => [e.event.id, e])).values()];
  }

  async list(limit: number): Promise<ParkedEvent[]> {
    return this.current()
      .slice(0, limit)
      .map(({ event, reason, parkedAt }) => ({
        id: event.id,
        type: event.type,
        source: event.source,
        ...(event.subject !== undefined ? { subject: event.subject } : {}),
        time: event.time,
        ...eventDigest(event),
        reason,
        parkedAt,
      }));
  }

  async count(): Promise<number> {
    return this.current().length;
  }

  async redrive(ids?: readonly string[]): Promise<RedriveOutcome> {
    const wanted = ids ? new Set(ids) : undefined;
    const entries = this.file.read().filter((e) => !wanted || wanted.has(e.event.id));
    const events = [...new Map(entries.map((e) => [e.event.id, e.event])).values()];
    if (events.length === 0) return { requeued: 0, published: [], parkedAgain: [], pending: [] };
    await this.outbox.append(events);
    await this.file.remove(entries);
    // A bus still refusing or away is the relay's to log and retry; the outcome names what waits.
    const published = await this.outbox.publishPending().then(
      () => true,
      () => false,
    );
    const parkedAgain = new Set(this.file.read().map((e) => e.event.id));
    const requeued = events.map((e) => e.id);
    const out = requeued.filter((id) => !parkedAgain.has(id));
    return {
      requeued: requeued.length,
      published: published ? out : [],
      parkedAgain: requeued.filter((id) => parkedAgain.has(id)),
      pending: published ? [] : out,
    };
  }
}

import {
  close,
  closeSync,
  fsync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlink,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { DecisionRecord, Intervention } from '@flowloom/contracts';
import type { DecisionFilter, DecisionStore, RecordedInputs } from '../ports/decision-store.js';

type Entry =
  | { kind: 'd'; record: DecisionRecord }
  | { kind: 'i'; eventId: string; at: string; intervention: Intervention };

const FLUSH_MS = 25;
const FSYNC_MS = 50;
const MAX_PENDING = 2_000;

/**
 * Decisions arrive one per request; an embedded database pays dearly per insert. This store takes
 * each one into a write-ahead file (an append, flushed to disk every 50 ms like the gateway's outbox)
 * and writes them to the database in multi-row batches every 25 ms. A segment is deleted once its
 * batch is committed, and leftover segments are written at the next start, so an acknowledged
 * decision is never lost. Reads see buffered decisions at once.
 *
 * On the request thread of `flowloom up`, file calls that block are kept few: the lines taken in
 * one turn of the event loop go to the file in one write (before the turn's answers can leave, so
 * an answered request's decision is in the file), and a committed segment is closed and deleted in
 * the background (an unlink took ~0.2 ms under load, 40 times a second).
 */
export class BufferedDecisionStore implements DecisionStore {
  private pending: Entry[] = [];
  private readonly byId = new Map<string, DecisionRecord>();
  private segment: { path: string; fd: number; dirty: boolean };
  /** Committed segments being closed and deleted in the background. */
  private readonly removals = new Set<Promise<void>>();
  /** Lines taken this turn, not yet in the segment file, and when they will be. */
  private unwritten: string[] = [];
  private turnWritten: Promise<void> | undefined;
  private sequence = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly syncTimer: ReturnType<typeof setInterval>;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly inner: DecisionStore,
    private readonly dir: string,
    private readonly onError: (error: unknown) => void,
  ) {
    this.segment = this.openSegment();
    this.syncTimer = setInterval(() => this.sync(), FSYNC_MS);
    this.syncTimer.unref?.();
  }

  /** Opens the buffer folder and first writes what an earlier run left in it. */
  static async open(
    inner: DecisionStore,
    dir: string,
    onError: (error: unknown) => void,
  ): Promise<BufferedDecisionStore> {
    mkdirSync(dir, { recursive: true });
    const leftovers = readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort();
    for (const file of leftovers) {
      const entries = readFileSync(join(dir, file), 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Entry];
          } catch {
            return []; // a torn last line: it was never acknowledged
          }
        });
      await BufferedDecisionStore.write(inner, entries);
      unlinkSync(join(dir, file));
    }
    const store = new BufferedDecisionStore(inner, dir, onError);
    store.sequence = leftovers.length;
    return store;
  }

  private static async write(inner: DecisionStore, entries: readonly Entry[]): Promise<void> {
    const decisions: DecisionRecord[] = [];
    const interventions: Array<{ eventId: string; at: Date; intervention: Intervention }> = [];
    for (const e of entries) {
      if (e.kind === 'd') decisions.push(e.record);
      else interventions.push({ eventId: e.eventId, at: new Date(e.at), intervention: e.intervention });
    }
    if (decisions.length > 0) await inner.saveMany(decisions);
    if (interventions.length > 0) await inner.saveInterventions(interventions);
  }

  private openSegment(): { path: string; fd: number; dirty: boolean } {
    const name = `${Date.now().toString().padStart(15, '0')}-${String(this.sequence++).padStart(6, '0')}.jsonl`;
    const path = join(this.dir, name);
    return { path, fd: openSync(path, 'a'), dirty: false };
  }

  private writeOut(): void {
    this.turnWritten = undefined;
    if (this.unwritten.length === 0) return;
    writeSync(this.segment.fd, this.unwritten.join(''));
    this.unwritten = [];
    this.segment.dirty = true;
  }

  private sync(): void {
    this.writeOut();
    const segment = this.segment;
    if (!segment.dirty) return;
    segment.dirty = false;
    fsync(segment.fd, (error) => {
      if (error && !this.closed) this.onError(error);
    });
  }

  /** Schedules the write of this turn's lines, after the turn's last take. */
  private writeThisTurn(): Promise<void> {
    this.turnWritten = new Promise<void>((resolve, reject) =>
      setImmediate(() => {
        try {
          this.writeOut();
          resolve();
        } catch (error) {
          reject(error);
        }
      }),
    );
    return this.turnWritten;
  }

  /** Takes an entry; resolves once it is in the segment file (the bus acknowledges its event then). */
  private take(entry: Entry): Promise<void> {
    if (this.closed) throw new Error('the decision store is closed');
    this.unwritten.push(`${JSON.stringify(entry)}\n`);
    const written = this.turnWritten ?? this.writeThisTurn();
    this.pending.push(entry);
    if (entry.kind === 'd') this.byId.set(entry.record.decisionId, entry.record);
    if (this.pending.length >= MAX_PENDING) this.flushLater(0);
    else this.flushLater(FLUSH_MS);
    return written;
  }

  save(record: DecisionRecord): Promise<void> {
    return this.take({ kind: 'd', record });
  }

  async saveMany(records: readonly DecisionRecord[]): Promise<void> {
    let written: Promise<void> = Promise.resolve();
    for (const record of records) written = this.take({ kind: 'd', record });
    await written;
  }

  saveIntervention(eventId: string, at: Date, intervention: Intervention): Promise<void> {
    return this.take({ kind: 'i', eventId, at: at.toISOString(), intervention });
  }

  async saveInterventions(
    entries: ReadonlyArray<{ eventId: string; at: Date; intervention: Intervention }>,
  ): Promise<void> {
    for (const e of entries) await this.saveIntervention(e.eventId, e.at, e.intervention);
  }

  /** A flush in the background; its failure was reported through onError and is retried. */
  private flushLater(ms: number): void {
    if (this.timer && ms > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch(() => {});
    }, ms);
  }

  /** Writes everything taken so far to the database; one flush at a time. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const run = this.flushing.then(() => this.flushNow());
    this.flushing = run.catch((error: unknown) => this.onError(error));
    return run;
  }

  private async flushNow(): Promise<void> {
    if (this.pending.length === 0) return;
    this.writeOut();
    const batch = this.pending;
    const segment = this.segment;
    this.pending = [];
    this.segment = this.openSegment();
    try {
      await BufferedDecisionStore.write(this.inner, batch);
    } catch (error) {
      // Keep them: they are written again with the next batch (inserts are idempotent).
      this.pending = [...batch, ...this.pending];
      closeSync(segment.fd);
      this.flushLater(1_000);
      throw error;
    }
    this.remove(segment);
    for (const e of batch) if (e.kind === 'd') this.byId.delete(e.record.decisionId);
  }

  /** A segment left behind (the deletion failed) is only written again at the next start: inserts are idempotent. */
  private remove(segment: { path: string; fd: number }): void {
    const removal = new Promise<void>((resolve) =>
      close(segment.fd, () => unlink(segment.path, () => resolve())),
    );
    this.removals.add(removal);
    void removal.then(() => this.removals.delete(removal));
  }

  async get(id: string): Promise<DecisionRecord | undefined> {
    return this.byId.get(id) ?? this.inner.get(id);
  }

  async list(filter: DecisionFilter): Promise<DecisionRecord[]> {
    await this.flush();
    return this.inner.list(filter);
  }

  async interventions(
    job: string,
    after: string | undefined,
    limit: number,
  ): Promise<Array<Intervention & { at: string }>> {
    await this.flush();
    return this.inner.interventions(job, after, limit);
  }

  async inputsSince(since: Date, limit: number): Promise<RecordedInputs> {
    await this.flush();
    return this.inner.inputsSince(since, limit);
  }

  async close(): Promise<void> {
    clearInterval(this.syncTimer);
    await this.flush().catch(() => {});
    this.closed = true;
    this.writeOut();
    await Promise.all(this.removals);
    closeSync(this.segment.fd);
    // An empty segment carries nothing; a non-empty one (a failed last flush) is kept for the next start.
    if (this.pending.length === 0) unlinkSync(this.segment.path);
    await this.inner.close();
  }
}

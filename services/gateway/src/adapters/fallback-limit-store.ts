import { randomUUID } from 'node:crypto';
import type { LimitStore, Reservation, ReserveResult, TakeResult } from '../ports/limit-store.js';
import type {
  JournalBatch,
  JournaledCounter,
  JournalRow,
  JournalWrite,
  LimitsJournal,
} from '../ports/limits-journal.js';
import type { CounterSnapshot } from './memory-limit-store.js';
import { type FallbackMode, FallbackStore } from './shared-store-fallback.js';

export type LimitsFallback = FallbackMode;

/** The shared store: takes a batch of counters once (see RedisLimitStore.handOver). */
export type SharedLimitStore = LimitStore & {
  handOver(id: string, counters: readonly CounterSnapshot[]): Promise<boolean>;
};
/** The local store: gives up what it counted (see MemoryLimitStore.drain and takeChanges). */
export type LocalLimitStore = LimitStore & {
  drain(): CounterSnapshot[];
  trackChanges(): void;
  takeChanges(): JournaledCounter[];
  seed(counters: readonly JournaledCounter[]): void;
};

/** What one hand-over added to the shared store, for metrics and logs. */
export interface LimitsHandOver {
  /** False when the shared store already had this batch (a retry after a lost reply). */
  added: boolean;
  /** Counter key → amount added (spend in micro-USD, tokens, requests, by the key's kind). */
  amounts: Record<string, number>;
}

export interface FallbackLimitStoreOptions {
  onChange?: (degraded: boolean, reason: string) => void;
  onHandOver?: (handOver: LimitsHandOver) => void;
  retryMs?: number;
  now?: () => number;
  /**
   * Where local counts go as they accrue during an outage, so that they reach the shared store even
   * if this replica dies before it is back: whichever replica finds Redis back hands over the batches left in it.
   */
  journal?: LimitsJournal;
  /** How often local counts are written to the journal during an outage (1 s by default): what a kill can lose. */
  journalMs?: number;
  /** How often a replica using the shared store looks for batches left by a dead replica (30 s by default). */
  sweepMs?: number;
  /**
   * How long requests wait, on falling back, for the local counters to be seeded from the journal
   * (2 s by default); past it they go on, and the seed is added when it comes.
   */
  seedWaitMs?: number;
  onJournalError?: (error: unknown) => void;
}

/** Journal batches read per query while handing over. */
const JOURNAL_PAGE = 100;

/** A journal row as its replica writes it: how many of its writes the row confirmed. */
type WrittenRow = JournalRow & { written: number };

/** A batch to add to the shared store directly, under an id it applies once. */
interface DirectBatch {
  id: string;
  counters: CounterSnapshot[];
}

/** A counter nobody uses: reading it tells whether the shared store answers. */
const READINESS_KEY = 'readiness-probe';

/**
 * Budgets and rate limits on the shared store, with its fallback (SharedStoreFallback): `local`
 * switches to this replica's own counters (limits then hold per replica, not jointly) and `closed`
 * refuses requests. When the shared store answers again, what was counted locally meanwhile is added
 * to it (once, atomically) before it serves, so a budget remembers what was spent during the outage.
 * Reservations made locally move with their counters, so settling them later on the shared store is
 * right; windows that are over are not carried.
 */
export class FallbackLimitStore extends FallbackStore<LimitStore> implements LimitStore {
  /** Names this process's batches: the shared store applies each id once. */
  private readonly replica = randomUUID();
  private batches = 0;
  /** Drained batches not yet confirmed by the shared store: each retried with the same id. */
  private pending: DirectBatch[] = [];
  private handing: Promise<void> | undefined;
  private journalTimer: ReturnType<typeof setInterval> | undefined;
  /** A journal write in flight: a hand-over waits for it, so the batch is in the journal first. */
  private journaling: Promise<void> = Promise.resolve();
  private lastSweep = 0;
  /** Where this outage's local counts are journaled: a new outage (and row) each time the local store is drained. */
  private row!: WrittenRow;
  /**
   * A journal write whose outcome is unknown (it failed: its reply may have been lost after it
   * committed). It is retried as it is, same row and seq, before anything else is written, so the row
   * takes it once; the counts made meanwhile wait in the local store's changes.
   */
  private unconfirmed: { row: WrittenRow; write: JournalWrite } | undefined;
  /** Seeding of the local counters from the journal, started on falling back; requests wait for it once. */
  private seeding: Promise<void> | undefined;
  private seeded = false;
  /** The journal could not be read for the seed: the next tick tries again. */
  private reseed = false;

  constructor(
    shared: SharedLimitStore,
    private readonly local: LocalLimitStore,
    mode: LimitsFallback,
    private readonly options: FallbackLimitStoreOptions = {},
  ) {
    super(
      shared,
      local,
      {
        what: 'limits',
        mode,
        closedMessage:
          'Budgets and rate limits cannot be checked right now (limits store unreachable). Retry shortly.',
        onChange: options.onChange,
        onRecover: () => this.handOver(shared),
        retryMs: options.retryMs,
        now: options.now,
      },
      (store) => store.get(READINESS_KEY),
    );
    this.nextOutage();
    if (options.journal) {
      local.trackChanges();
      this.journalTimer = setInterval(() => this.tick(shared), options.journalMs ?? 1_000);
      this.journalTimer.unref();
    }
  }

  /** During an outage, journals what was counted since the last tick; otherwise, now and then, sweeps. */
  private tick(shared: SharedLimitStore): void {
    // The last write of an outage may be unconfirmed still (the database failing as Redis came back).
    if (this.unconfirmed && !this.fallback.degraded) void this.journalChanges();
    if (this.fallback.degraded) {
      // Seeds without waiting for a request (a restarted replica), or retries a seed that failed.
      if (this.reseed) {
        this.reseed = false;
        void this.seed(this.row);
      } else void this.startSeeding();
      void this.journalChanges();
      return;
    }
    const now = this.options.now?.() ?? Date.now();
    if (this.handing || now - this.lastSweep < (this.options.sweepMs ?? 30_000)) return;
    this.lastSweep = now;
    // Batches of a replica that died during an outage, or written after the others recovered.
    void this.handOver(shared).catch((error: unknown) => this.options.onJournalError?.(error));
  }

  /**
   * Writes the local changes to the journal, once a write whose outcome was unknown is confirmed; on
   * failure they stay in the local store (and the write unconfirmed), for the next tick.
   */
  private journalChanges(): Promise<void> {
    const journal = this.options.journal;
    if (!journal) return Promise.resolve();
    this.journaling = this.journaling.then(async () => {
      try {
        await this.confirm(journal);
        const changes = this.local.takeChanges();
        if (changes.length > 0) await this.write(journal, this.row, changes);
      } catch (error) {
        this.options.onJournalError?.(error);
      }
    });
    return this.journaling;
  }

  /** Adds to the outage's journal row, once however often it is retried (see `unconfirmed`). */
  private write(
    journal: LimitsJournal,
    row: WrittenRow,
    counters: readonly JournaledCounter[],
  ): Promise<void> {
    this.unconfirmed = { row, write: { seq: row.written + 1, counters } };
    return this.confirm(journal);
  }

  /** Retries the unconfirmed write; once a hand-over has sealed its row, to a new row of the same outage. */
  private async confirm(journal: LimitsJournal): Promise<void> {
    const unconfirmed = this.unconfirmed;
    if (!unconfirmed) return;
    const { row } = unconfirmed;
    while (!(await journal.append(row, unconfirmed.write))) {
      row.id = randomUUID();
      row.written = 0;
      unconfirmed.write = { seq: 1, counters: unconfirmed.write.counters };
    }
    row.written = unconfirmed.write.seq;
    this.unconfirmed = undefined;
  }

  /** The local store was drained: what it counts next is a new outage, seeded afresh on falling back. */
  private nextOutage(): void {
    this.row = { id: randomUUID(), replica: this.replica, outage: randomUUID(), written: 0 };
    this.seeding = undefined;
    this.seeded = this.options.journal === undefined;
    this.reseed = false;
  }

  /** Requests on the local store wait (once, at most seedWaitMs) for its counters to be seeded. */
  private startSeeding(): Promise<void> {
    const row = this.row;
    this.seeding ??= new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.options.seedWaitMs ?? 2_000);
      void this.seed(row).finally(() => {
        clearTimeout(timer);
        resolve();
      });
    }).then(() => {
      if (this.row === row) this.seeded = true;
    });
    return this.seeding;
  }

  /**
   * Adds to the local counters what the journal holds for the current outage, so that a replica
   * restarted during it does not let a budget be spent again. The journal holds the current outage
   * only: whichever replica finds Redis back hands every row over. Seeded amounts are not recorded as
   * changes, so they are never journaled (hence handed over) a second time; this outage's own rows are
   * left out, since its counts are in the local counters already (a seed that failed and came late).
   *
   * Every replica's rows, not only this one's: a replica restarted, or replaced, gets a new identity,
   * so its own earlier rows look like another replica's anyway; and with the others' spend counted, a
   * budget is held jointly as far as the journal knows, never looser than per replica, so N replicas
   * let at most N times a limit through however often they restart, where counting from zero would
   * grant a fresh limit at each restart.
   */
  private async seed(row: JournalRow): Promise<void> {
    const journal = this.options.journal;
    if (!journal) return;
    try {
      const counters = await journal.outstanding(row.outage, this.options.now?.() ?? Date.now());
      // A hand-over drained the local store meanwhile: the next outage seeds for itself.
      if (this.row === row) this.local.seed(counters);
    } catch (error) {
      if (this.row === row) this.reseed = true;
      this.options.onJournalError?.(error);
    }
  }

  /** Runs `op` on the store in use; on the local one, once it is seeded. */
  private use<T>(op: (store: LimitStore) => Promise<T>): Promise<T> {
    return this.fallback.use((store) =>
      store !== this.local || this.seeded ? op(store) : this.startSeeding().then(() => op(store)),
    );
  }

  /** One hand-over at a time: requests that find the store back meanwhile wait for it. */
  private handOver(shared: SharedLimitStore): Promise<void> {
    this.handing ??= this.handOverAll(shared).finally(() => {
      this.handing = undefined;
    });
    return this.handing;
  }

  private async handOverAll(shared: SharedLimitStore): Promise<void> {
    for (;;) {
      if (this.pending.length === 0) {
        // Drain only once the shared store answers: a recovery attempt during the outage must leave
        // the local counters whole, since they still enforce the limits meanwhile.
        await shared.get(READINESS_KEY);
        this.pending = await this.takeLocal();
        if (this.pending.length === 0) return this.handOverJournal(shared);
      }
      // A failure keeps the batches pending (and the fallback in use): the retry sends the same ids.
      for (let batch = this.pending[0]; batch; batch = this.pending[0]) {
        const added = await shared.handOver(batch.id, batch.counters);
        this.pending.shift();
        this.options.onHandOver?.({
          added,
          amounts: Object.fromEntries(batch.counters.map((c) => [c.key, c.value])),
        });
      }
    }
  }

  /**
   * Empties the local store. With a journal, what it counted goes there (the last changes first), and
   * is handed over from there; what the journal could not take is returned, to hand over now, under
   * an id that keeps it from being added twice.
   */
  private async takeLocal(): Promise<DirectBatch[]> {
    const journal = this.options.journal;
    const now = this.options.now?.() ?? Date.now();
    if (!journal) return this.direct(this.local.drain());
    await this.journalChanges();
    // Synchronous together: nothing can count in between, so the journal holds every local count.
    const changes = this.local.takeChanges();
    this.local.drain();
    const row = this.row;
    this.nextOutage();
    // Never sent to the journal (it failed on an earlier write): under an id of their own.
    if (this.unconfirmed) return [...this.unconfirmedRow(now), ...this.direct(snapshots(changes, now))];
    if (changes.length === 0) return [];
    // In the chain of journal writes, so that a tick cannot retry this write alongside.
    const written = this.journaling.then(() => this.write(journal, row, changes));
    this.journaling = written.catch(() => {});
    try {
      await written;
      return [];
    } catch (error) {
      this.options.onJournalError?.(error);
      return this.unconfirmedRow(now);
    }
  }

  /** Counters to hand over directly, under `id` (by default a new one of this replica's). */
  private direct(counters: CounterSnapshot[], id?: string): DirectBatch[] {
    return counters.length === 0 ? [] : [{ id: id ?? `${this.replica}:${++this.batches}`, counters }];
  }

  /**
   * The unconfirmed write, if it is the one that creates its row: its row holds that write or
   * nothing, so it is handed over now under the row's batch id, which the shared store then applies
   * once whether or not the row exists. A later write stays unconfirmed, retried until the database
   * answers, then handed over with its row by a sweep.
   */
  private unconfirmedRow(now: number): DirectBatch[] {
    const unconfirmed = this.unconfirmed;
    if (unconfirmed?.write.seq !== 1) return [];
    this.unconfirmed = undefined;
    return this.direct(snapshots(unconfirmed.write.counters, now), journalBatchId(unconfirmed.row.id));
  }

  /**
   * Hands over every batch in the journal, this replica's and those of replicas that died. Each batch
   * id is applied once by the shared store, so two replicas handing over the same batch add it once.
   * An unreadable journal (database down) leaves the batches for the next sweep.
   */
  private async handOverJournal(shared: SharedLimitStore): Promise<void> {
    const journal = this.options.journal;
    if (!journal) return;
    let batches: JournalBatch[];
    do {
      try {
        batches = await journal.claim(JOURNAL_PAGE);
      } catch (error) {
        this.options.onJournalError?.(error);
        return;
      }
      const now = this.options.now?.() ?? Date.now();
      // One report per page, not per batch: a long outage leaves a batch per replica per second.
      const amounts: Record<string, number> = {};
      let added = false;
      let handed = 0;
      for (const batch of batches) {
        const counters = snapshots(batch.counters, now);
        if (counters.length > 0 && (await shared.handOver(journalBatchId(batch.id), counters))) {
          added = true;
          for (const c of counters) amounts[c.key] = (amounts[c.key] ?? 0) + c.value;
        }
        handed += counters.length;
        await journal.handed([batch.id]);
      }
      if (handed > 0) this.options.onHandOver?.({ added, amounts });
    } while (batches.length === JOURNAL_PAGE);
  }

  /** Journals what is left, so a graceful stop during an outage loses nothing. */
  override async close(): Promise<void> {
    clearInterval(this.journalTimer);
    if (this.fallback.degraded || this.unconfirmed) await this.journalChanges();
    await this.journaling;
    await super.close();
  }

  /** While handing over, says so without waiting for it; otherwise the probed status. */
  override check(): Promise<string> {
    if (this.handing)
      return Promise.resolve(
        'degraded: handing over the budgets and rate limits counted locally during the outage to the shared store',
      );
    return super
      .check()
      .then((status) =>
        this.pending.length > 0
          ? `${status}; ${this.pending.reduce((n, b) => n + b.counters.length, 0)} counters wait to be handed over`
          : status,
      );
  }

  reserve(reservations: readonly Reservation[]): Promise<ReserveResult> {
    return this.use((s) => s.reserve(reservations));
  }

  adjust(entries: ReadonlyArray<{ key: string; delta: number; ttlSeconds: number }>): Promise<void> {
    return this.use((s) => s.adjust(entries));
  }

  take(key: string, amount: number, limit: number, windowMs: number, now: number): Promise<TakeResult> {
    return this.use((s) => s.take(key, amount, limit, windowMs, now));
  }

  record(key: string, amount: number, windowMs: number, now: number): Promise<void> {
    return this.use((s) => s.record(key, amount, windowMs, now));
  }

  get(key: string): Promise<number> {
    return this.use((s) => s.get(key));
  }
}

/** The id a journal row is handed over under: the shared store applies it once. */
function journalBatchId(row: string): string {
  return `journal:${row}`;
}

/** Journaled changes as counters to hand over: those whose counter has expired (a window that is over) left out. */
function snapshots(changes: readonly JournaledCounter[], now: number): CounterSnapshot[] {
  return changes
    .filter((c) => c.value !== 0 && (c.expiresAt === 0 || c.expiresAt > now))
    .map((c) => ({ key: c.key, value: c.value, ttlMs: c.expiresAt === 0 ? 0 : c.expiresAt - now }));
}

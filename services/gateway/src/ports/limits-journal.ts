/** What a replica added to one counter locally during a Redis outage. */
export interface JournaledCounter {
  key: string;
  /** The amount added (negative: refunded) since the previous batch. */
  value: number;
  /** When the counter expires (epoch ms); 0: never. */
  expiresAt: number;
}

/** One batch of a replica's local counts: a row the replica adds to until a hand-over seals it. */
export interface JournalBatch {
  /** Unique across databases: it names the batch in the shared store, which applies each name once. */
  id: string;
  replica: string;
  counters: JournaledCounter[];
}

/** Where a replica's local counts go: one row per replica and outage, until a hand-over seals it. */
export interface JournalRow {
  /** The batch (row) id; a new one once a hand-over sealed the previous. */
  id: string;
  replica: string;
  /** The replica's outage: from falling back to local counting until it drains its local counters. */
  outage: string;
}

/** One write to a row: what it adds, and its place among the row's writes (its idempotency token). */
export interface JournalWrite {
  /**
   * 1 for the write that creates the row, one more for each next write. A write whose outcome is
   * unknown (its reply was lost) is retried with the same seq and counters before the next is made:
   * the row applies each seq once, so a retry of a write it committed adds nothing.
   */
  seq: number;
  counters: readonly JournaledCounter[];
}

/**
 * Durable record of the budgets and rate limits a replica counts locally while the shared store
 * (Redis) is unreachable, so that they reach it once it is back even if the replica that counted
 * them died: every replica hands over the batches still in it.
 */
export interface LimitsJournal {
  /**
   * Adds the write's counters to the row once (seq 1 creates it): one row per replica and outage,
   * however long it lasts. True once the row holds the write, now or from an earlier attempt (a
   * retry after a lost reply, even if the row was sealed since). False when a hand-over sealed (or
   * handed over) the row before the write reached it: nothing was written, write it to a new row.
   */
  append(row: JournalRow, write: JournalWrite): Promise<boolean>;
  /**
   * Seals up to `limit` batches, oldest first, and returns them: a sealed batch never changes again,
   * so handing it over under its id adds it exactly once.
   */
  claim(limit: number): Promise<JournalBatch[]>;
  /**
   * Empties sealed batches the shared store has applied; the row is kept (for a day) so that a
   * retried write still finds which writes it held, then forgotten.
   */
  handed(ids: readonly string[]): Promise<void>;
  /**
   * Every counter the journal holds, summed over the batches not handed over (but those of
   * `exceptOutage`), that is still live at `now`: what was counted locally during the current outage.
   */
  outstanding(exceptOutage: string, now: number): Promise<JournaledCounter[]>;
}

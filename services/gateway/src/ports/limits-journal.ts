/** What a replica added to one counter locally during a Redis outage. */
export interface JournaledCounter {
  key: string;
  /** The amount added (negative: refunded) since the previous batch. */
  value: number;
  /** When the counter expires (epoch ms); 0: never. */
  expiresAt: number;
}

/** One batch of a replica's local counts, written as they accrue. */
export interface JournalBatch {
  /** Unique across databases: it names the batch in the shared store, which applies each name once. */
  id: string;
  replica: string;
  counters: JournaledCounter[];
}

/**
 * Durable record of the budgets and rate limits a replica counts locally while the shared store
 * (Redis) is unreachable, so that they reach it once it is back even if the replica that counted
 * them died: every replica hands over the batches still in it.
 */
export interface LimitsJournal {
  append(replica: string, counters: readonly JournaledCounter[]): Promise<void>;
  /** Batches not handed over yet, oldest first. */
  pending(limit: number): Promise<JournalBatch[]>;
  /** Forgets batches the shared store has applied. */
  handed(ids: readonly string[]): Promise<void>;
}

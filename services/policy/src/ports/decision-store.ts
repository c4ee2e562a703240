import type { DecisionRecord } from '@flowloom/contracts';

export interface DecisionFilter {
  job?: string;
  keyId?: string;
  policy?: string;
  verdict?: string;
  since?: Date;
  limit: number;
}

/** Decision records consumed from the gateways' events; the traffic replay evaluates candidates against. */
export interface DecisionStore {
  /** Idempotent: a redelivered decision is stored once. */
  save(record: DecisionRecord): Promise<void>;
  get(id: string): Promise<DecisionRecord | undefined>;
  /** Newest first. */
  list(filter: DecisionFilter): Promise<DecisionRecord[]>;
  /** Recorded inputs since a time, oldest first, for replay. */
  inputsSince(
    since: Date,
    limit: number,
  ): Promise<Array<{ id: string; at: string; input: Record<string, unknown> }>>;
}

import type { DecisionRecord, Intervention } from '@flowloom/contracts';

export interface RecordedInput {
  id: string;
  at: string;
  input: Record<string, unknown>;
  /** The paths the policies evaluated then read (every evaluation's `inputs`), i.e. what was gathered. */
  read: string[];
  /** `pre_call` on records made since decisions carry their phase (and their answer, when there was one). */
  phase?: 'pre_call' | 'post_call';
}

export interface RecordedInputs {
  records: RecordedInput[];
  /** Decisions in the window, the ones past the limit included. */
  inWindow: number;
  /** Of the newest `limit`, those recorded without an input (nothing to replay). */
  withoutInput: number;
}

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
  saveMany(records: readonly DecisionRecord[]): Promise<void>;
  get(id: string): Promise<DecisionRecord | undefined>;
  /** Newest first. */
  list(filter: DecisionFilter): Promise<DecisionRecord[]>;
  /** Idempotent by event id. */
  saveIntervention(eventId: string, at: Date, intervention: Intervention): Promise<void>;
  saveInterventions(
    entries: ReadonlyArray<{ eventId: string; at: Date; intervention: Intervention }>,
  ): Promise<void>;
  /**
   * A job's interventions in decision order after the decision `after` (exclusive); a page never
   * splits the interventions of one decision.
   */
  interventions(
    job: string,
    after: string | undefined,
    limit: number,
  ): Promise<Array<Intervention & { at: string }>>;
  /**
   * For replay: the inputs of the newest `limit` requests since a time (their pre-call decisions,
   * which carry the answer too), oldest first.
   */
  inputsSince(since: Date, limit: number): Promise<RecordedInputs>;
  close(): Promise<void>;
}

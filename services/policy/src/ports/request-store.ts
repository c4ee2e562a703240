import type { RebuiltRequest } from '../domain/request-facts.js';

export interface UndecidedRequests {
  /** Oldest first. */
  records: RebuiltRequest[];
  /** Requests without a decision in the window, the ones past the limit included. */
  inWindow: number;
}

/** The requests the gateways answered or failed, as their events tell them: replay's traffic when no decision was recorded. */
export interface RequestStore {
  /** Idempotent by request id: a redelivered event is stored once. */
  saveMany(requests: readonly RebuiltRequest[]): Promise<void>;
  /** The newest `limit` requests since a time for which no decision was recorded. */
  undecidedSince(since: Date, limit: number): Promise<UndecidedRequests>;
}

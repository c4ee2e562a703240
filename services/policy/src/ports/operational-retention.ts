/** What one retention pass removed from the policy service's own tables. */
export interface PrunedRows {
  decisions: number;
  interventions: number;
  requests: number;
}

/**
 * The policy service's working copies (decisions for `GET /api/v1/decisions/{id}` and explanations,
 * interventions, replay's request traffic) are kept for a while, not forever: the audit ledger is the
 * lasting record of each of them.
 */
export interface OperationalRetention {
  /** Deletes the rows older than `cutoff`, a bounded slice at a time. */
  pruneBefore(cutoff: Date): Promise<PrunedRows>;
}

/** Publishes events committed with the policy service's changes; `wake` after a commit to publish at once. */
export interface EventRelay {
  wake(): void;
  publishPending(): Promise<number>;
}

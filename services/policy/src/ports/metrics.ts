/** What the decisions consumer reports (a Prometheus counter in the service). */
export interface PolicyConsumerMetrics {
  /** `count` decisions and interventions were stored. */
  stored(count: number): void;
}

/** What the decisions consumer reports (a Prometheus counter in the service). */
export interface PolicyConsumerMetrics {
  stored(): void;
}

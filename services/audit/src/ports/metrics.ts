/** What the consumer reports after each delivery it appended (Prometheus counters in the service). */
export interface AuditConsumerMetrics {
  consumed(events: number, appended: number): void;
}

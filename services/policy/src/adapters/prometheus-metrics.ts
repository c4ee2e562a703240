import { Counter, Gauge, type Registry } from '@flowloom/telemetry';
import type { PolicyConsumerMetrics } from '../ports/metrics.js';

/**
 * The policy service's Prometheus series: decisions written to the decision store and the outbox
 * backlog (its parked events' series are @flowloom/outbox's). Registered once per process (on the gateway's registry in `flowloom up`).
 */
export function registerPolicyMetrics(
  registry: Registry,
  outboxBacklog: () => Promise<number>,
): PolicyConsumerMetrics {
  const stored = new Counter({
    name: 'flowloom_policy_decisions_stored_total',
    help: 'Policy decisions and interventions written to the decision store (redeliveries included: saving is idempotent)',
    registers: [registry],
  });
  new Gauge({
    name: 'flowloom_policy_outbox_backlog_events',
    help: 'Policy service events (policy changes) committed but not yet published on the bus; growing: the bus is down',
    registers: [registry],
    async collect() {
      try {
        this.set(await outboxBacklog());
      } catch {
        // Unreadable while the database is down: the last count stays, and /metrics still answers.
      }
    },
  });
  return { stored: (count) => stored.inc(count) };
}

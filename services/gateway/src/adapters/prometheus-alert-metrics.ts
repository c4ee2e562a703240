import { Counter, type Registry } from '@flowloom/telemetry';
import type { AlertMetrics } from '../ports/alerts.js';

/** `flowloom_alerts_total{channel,outcome}`; channel names come from flowloom.yaml and policy documents. */
export function createPrometheusAlertMetrics(registry: Registry): AlertMetrics {
  const alerts = new Counter({
    name: 'flowloom_alerts_total',
    help: 'Enforced policy alerts by channel and outcome: delivered, failed (after retries), dropped (queue full or shutdown), unconfigured (no such channel), suppressed (folded into a rate-limit summary)',
    labelNames: ['channel', 'outcome'],
    registers: [registry],
  });
  return {
    count(channel, outcome, n = 1) {
      alerts.inc({ channel, outcome }, n);
    },
  };
}

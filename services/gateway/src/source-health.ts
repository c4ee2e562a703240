import type { EventBus } from '@flowloom/bus';
import { Gauge, type Registry, registerBusGauges } from '@flowloom/telemetry';
import type { PolicySource } from './ports/policy-source.js';

// What the gateway depends on at a distance (the event bus, the policy service's bundle stream), as
// /readyz lines and metrics. Neither makes the gateway not ready: events wait in the durable outbox,
// and the last bundle stays in force.

/** Whether the event bus carries events, in metrics; nothing is registered for a bus that is always up. */
export function busGauges(bus: EventBus, registry: Registry): void {
  if (!bus.health) return;
  registerBusGauges(() => bus.health?.(), registry);
}

/** The policy stream's /readyz line: `ok` while connected, else since when, why, what is in force and the fix. */
export function policySourceCheck(source: PolicySource): string | undefined {
  const status = source.status?.();
  if (!status) return undefined;
  if (status.connected) return 'ok';
  const since = new Date(status.since).toISOString();
  const inForce =
    status.revision === undefined
      ? 'no bundle received yet, so no policies are enforced'
      : `revision ${status.revision} (received ${new Date(status.receivedAt ?? status.since).toISOString()}) stays in force; changes made since are not seen`;
  return `degraded: ${status.source} unreachable since ${since}${status.problem ? ` (${status.problem})` : ''}; ${inForce}. Fix: start the policy service, or correct FLOWLOOM_POLICY_SERVICE_URL; the gateway reconnects by itself`;
}

/** The policy stream in metrics: connected, and how long the bundle in force may be stale. */
export function policySourceGauges(source: PolicySource, registry: Registry): void {
  if (!source.status) return;
  const status = () => source.status?.();
  new Gauge({
    name: 'flowloom_policy_stream_connected',
    help: "1 while the policy service's bundle stream is connected; 0 while the last bundle is kept in force without it",
    registers: [registry],
    collect() {
      this.set(status()?.connected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'flowloom_policy_bundle_stale_seconds',
    help: 'How long the bundle in force has gone without the policy service (changes made meanwhile are not seen); 0 while connected',
    registers: [registry],
    collect() {
      const s = status();
      this.set(!s || s.connected ? 0 : (Date.now() - s.since) / 1000);
    },
  });
  new Gauge({
    name: 'flowloom_policy_bundle_revision',
    help: 'Revision of the policy bundle in force (-1: none received yet)',
    registers: [registry],
    collect() {
      this.set(status()?.revision ?? -1);
    },
  });
}

import type { EventBus } from '@flowloom/bus';
import type { CloudEvent } from '@flowloom/contracts';
import type { AuditLedger } from '../app/ledger.js';
import type { AuditConsumerMetrics } from '../ports/metrics.js';

/** The audit service's consumer group: it receives every event type. */
export const AUDIT_CONSUMER_GROUP = 'flowloom-audit';

/**
 * Appends every event the bus delivers. A delivery is acknowledged only once its entries are
 * durable, so a crash redelivers it; the ledger skips ids it already holds. On a bus that hands
 * over whole deliveries, one delivery is one group commit.
 */
export async function consumeAllEvents(
  bus: EventBus,
  ledger: AuditLedger,
  metrics?: AuditConsumerMetrics,
): Promise<void> {
  const handle = async (events: readonly CloudEvent[]): Promise<void> => {
    const outcome = await ledger.append(events);
    metrics?.consumed(events.length, outcome.appended);
  };
  if (bus.subscribeBatch) await bus.subscribeBatch(AUDIT_CONSUMER_GROUP, handle);
  else await bus.subscribe(AUDIT_CONSUMER_GROUP, (event) => handle([event]));
}

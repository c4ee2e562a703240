import type { EventBus } from '@flowloom/bus';
import type { CloudEvent } from '@flowloom/contracts';
import { POLICY_DECISION, POLICY_INTERVENTION } from '@flowloom/contracts';
import type { DecisionsService } from '../app/decisions.js';
import type { PolicyConsumerMetrics } from '../ports/metrics.js';

const TYPES = [POLICY_DECISION, POLICY_INTERVENTION];

/**
 * Stores every decision and intervention the gateways record (at least once; saving is idempotent).
 * A delivery is written in one statement per kind where the bus hands over batches, and it is
 * acknowledged only once written: the outbox (embedded) or Kafka redelivers what a crash cut off.
 */
export async function consumeDecisions(
  bus: EventBus,
  decisions: DecisionsService,
  onSkipped: (reason: string) => void,
  metrics?: PolicyConsumerMetrics,
): Promise<void> {
  const store = async (events: readonly CloudEvent[]): Promise<void> => {
    const { stored, skipped } = await decisions.ingest(events);
    for (const reason of skipped) onSkipped(reason);
    if (stored > 0) metrics?.stored(stored);
  };
  if (bus.subscribeBatch) await bus.subscribeBatch('policy-decisions', store, TYPES);
  else await bus.subscribe('policy-decisions', (event) => store([event]), TYPES);
}

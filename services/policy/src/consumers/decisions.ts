import type { EventBus } from '@flowloom/bus';
import { POLICY_DECISION, POLICY_INTERVENTION } from '@flowloom/contracts';
import type { DecisionsService } from '../app/decisions.js';
import type { PolicyConsumerMetrics } from '../ports/metrics.js';

/** Stores every decision and intervention the gateways record (at least once; saving is idempotent). */
export async function consumeDecisions(
  bus: EventBus,
  decisions: DecisionsService,
  onSkipped: (reason: string) => void,
  metrics?: PolicyConsumerMetrics,
): Promise<void> {
  await bus.subscribe(
    'policy-decisions',
    async (event) => {
      const skipped = await decisions.ingest(event);
      if (skipped) onSkipped(skipped);
      else metrics?.stored();
    },
    [POLICY_DECISION, POLICY_INTERVENTION],
  );
}

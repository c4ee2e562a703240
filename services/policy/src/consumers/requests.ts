import type { EventBus } from '@flowloom/bus';
import {
  type CloudEvent,
  GATEWAY_REQUEST_COMPLETED,
  GATEWAY_REQUEST_FAILED,
  requestCompletedSchema,
  requestFailedSchema,
} from '@flowloom/contracts';
import { type RebuiltRequest, rebuildRequest } from '../domain/request-facts.js';
import type { RequestStore } from '../ports/request-store.js';

const TYPES = [GATEWAY_REQUEST_COMPLETED, GATEWAY_REQUEST_FAILED];

/** A request event as replay's traffic; undefined (and said why) for one that does not parse. */
function rebuilt(event: CloudEvent, onSkipped: (reason: string) => void): RebuiltRequest | undefined {
  const at = event.time;
  if (event.type === GATEWAY_REQUEST_COMPLETED) {
    const parsed = requestCompletedSchema.safeParse(event.data);
    if (parsed.success) return rebuildRequest({ kind: 'completed', data: parsed.data }, at);
  } else {
    const parsed = requestFailedSchema.safeParse(event.data);
    if (parsed.success) return rebuildRequest({ kind: 'failed', data: parsed.data }, at);
  }
  onSkipped(`request event ${event.id} (${event.type}) does not parse; not kept for replay`);
  return undefined;
}

/** A request a policy decided on before the call: replay reads its decision, which holds the facts. */
function decided(event: CloudEvent): boolean {
  const data = event.data as { decisionId?: unknown } | null | undefined;
  return typeof data?.decisionId === 'string';
}

/**
 * Keeps every answered or failed request no policy decided on (at least once; saving is idempotent
 * by request id), so a replay has traffic to evaluate even when no policy was active to record
 * decisions. A request with a decision is not kept again: its decision record holds what replay
 * reads. A delivery is written in one statement where the bus hands over batches.
 */
export async function consumeRequests(
  bus: EventBus,
  store: RequestStore,
  onSkipped: (reason: string) => void,
): Promise<void> {
  const save = async (events: readonly CloudEvent[]): Promise<void> => {
    const requests = events.flatMap((e) => (decided(e) ? [] : (rebuilt(e, onSkipped) ?? [])));
    if (requests.length > 0) await store.saveMany(requests);
  };
  if (bus.subscribeBatch) await bus.subscribeBatch('policy-requests', save, TYPES);
  else await bus.subscribe('policy-requests', (event) => save([event]), TYPES);
}

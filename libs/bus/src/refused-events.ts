import type { CloudEvent } from '@flowloom/contracts';

/** An event the bus refused for good, and why (the broker's words). */
export interface RefusedEvent {
  id: string;
  type: string;
  reason: string;
}

/**
 * A publish in which the bus refused some events for good: sending them again cannot succeed until
 * an operator changes something (a topic's size limit). Every other event of the call was accepted,
 * so a relay may mark those published and set the refused ones aside instead of retrying forever.
 */
export class EventsRefusedError extends Error {
  override readonly name = 'EventsRefusedError';

  constructor(readonly refused: readonly RefusedEvent[]) {
    super(
      `the bus refused ${refused.length} event(s) for good: ${refused
        .slice(0, 5)
        .map((r) => `${r.id} (${r.type}): ${r.reason}`)
        .join('; ')}${refused.length > 5 ? '; ...' : ''}`,
    );
  }
}

export function isEventsRefused(error: unknown): error is EventsRefusedError {
  return error instanceof EventsRefusedError;
}

/**
 * Sends `events` in order; when a send is refused for good (`refusalOf` names why), splits it in
 * halves and sends each, first half first, down to single events, so that the events the brokers
 * accept still go out in order and only the offending ones are returned. A refusal of a batch may
 * come from its size as a whole: halves then go through. Other failures are thrown as they are.
 * `afterRefusal` runs after each refused send (the Kafka producer is renewed there).
 */
export async function sendIsolatingRefused(
  events: readonly CloudEvent[],
  send: (events: readonly CloudEvent[]) => Promise<void>,
  refusalOf: (error: unknown) => string | undefined,
  afterRefusal: () => Promise<void> = async () => {},
): Promise<RefusedEvent[]> {
  if (events.length === 0) return [];
  try {
    await send(events);
    return [];
  } catch (error) {
    const reason = refusalOf(error);
    if (reason === undefined) throw error;
    await afterRefusal();
    const [only] = events;
    if (events.length === 1 && only) return [{ id: only.id, type: only.type, reason }];
    const half = Math.ceil(events.length / 2);
    const first = await sendIsolatingRefused(events.slice(0, half), send, refusalOf, afterRefusal);
    const second = await sendIsolatingRefused(events.slice(half), send, refusalOf, afterRefusal);
    return [...first, ...second];
  }
}

/**
 * Publishes `events` on `bus`; resolves with the events it refused for good (every other one was
 * accepted then), rejects on every other failure.
 */
export async function publishExceptRefused(
  bus: { publish(events: readonly CloudEvent[]): Promise<void> },
  events: readonly CloudEvent[],
): Promise<readonly RefusedEvent[]> {
  try {
    await bus.publish(events);
    return [];
  } catch (error) {
    if (isEventsRefused(error)) return error.refused;
    throw error;
  }
}

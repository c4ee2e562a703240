import { createEvent, OUTBOX_EVENT_REDRIVEN, type OutboxEventRedriven } from '@flowloom/contracts';
import { parseInput as parse } from '@flowloom/errors';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Outbox } from '../../ports/outbox.js';
import type { ParkedEvents, RedriveOutcome } from '../../ports/parked-events.js';
import { actorOf, adminContext } from '../admin-auth.js';
import type { HttpDeps } from '../deps.js';

const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });
const redriveBody = z.strictObject({
  /** The parked events to publish again; every parked event when omitted. */
  ids: z.array(z.uuid()).min(1).max(1000).optional(),
});

/**
 * /api/v1/outbox/parked: the events the bus refused for good (too large for their topic, invalid),
 * kept in the outbox while a stand-in holds their place on the audit trail; and publishing them again
 * once the cause is fixed. Without a parking outbox (the embedded file log) there are none.
 */
export function registerAdminOutbox(
  app: FastifyInstance,
  deps: HttpDeps & { parked?: ParkedEvents; outbox: Outbox; source: string },
): void {
  app.get('/api/v1/outbox/parked', { config: { format: 'admin' } }, async (request, reply) => {
    await adminContext(request, reply, deps);
    const { limit } = parse(listQuery, request.query);
    if (!deps.parked) return reply.send({ total: 0, data: [] });
    const [total, data] = await Promise.all([deps.parked.count(), deps.parked.list(limit)]);
    return reply.send({ total, data });
  });

  app.post('/api/v1/outbox/parked/redrive', { config: { format: 'admin' } }, async (request, reply) => {
    const ctx = await adminContext(request, reply, deps);
    const { ids } = parse(redriveBody, request.body ?? {});
    const outcome: RedriveOutcome = deps.parked
      ? await deps.parked.redrive(ids)
      : { requeued: 0, published: [], parkedAgain: [], pending: [] };
    // Who published what again is evidence too: the trail records the request and its outcome.
    const recorded: OutboxEventRedriven = {
      actor: actorOf(ctx),
      ...(ids ? { requested: ids } : {}),
      ...outcome,
    };
    await deps.outbox.append([createEvent(OUTBOX_EVENT_REDRIVEN, deps.source, recorded)]);
    return reply.send(outcome);
  });
}

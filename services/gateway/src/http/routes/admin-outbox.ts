import { parseInput as parse } from '@flowloom/errors';
import { listParked, parkedListQuery, redriveBody, redriveRecorded } from '@flowloom/outbox';
import type { FastifyInstance } from 'fastify';
import type { Outbox } from '../../ports/outbox.js';
import type { ParkedEvents } from '../../ports/parked-events.js';
import { actorOf, adminFirst } from '../admin-auth.js';
import type { HttpDeps } from '../deps.js';
import { callerOf } from '../request-context.js';

/**
 * /api/v1/outbox/parked: the events the bus refused for good (too large for their topic, invalid),
 * kept in the outbox while a stand-in holds their place on the audit trail; and publishing them again
 * once the cause is fixed. Without a parking outbox there are none.
 */
export function registerAdminOutbox(
  app: FastifyInstance,
  deps: HttpDeps & { parked?: ParkedEvents; outbox: Outbox; source: string },
): void {
  app.get(
    '/api/v1/outbox/parked',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const { limit } = parse(parkedListQuery, request.query);
      return reply.send(await listParked(deps.parked, limit));
    },
  );

  app.post(
    '/api/v1/outbox/parked/redrive',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const ctx = callerOf(request);
      const { ids } = parse(redriveBody, request.body ?? {});
      // Who published what again is evidence too: the trail records the request and its outcome.
      const { outcome, evidence } = await redriveRecorded(deps.parked, {
        actor: actorOf(ctx),
        ids,
        source: deps.source,
      });
      await deps.outbox.append([evidence]);
      return reply.send(outcome);
    },
  );
}

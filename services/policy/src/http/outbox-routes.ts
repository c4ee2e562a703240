import type { CloudEvent } from '@flowloom/contracts';
import { parseInput as parse } from '@flowloom/errors';
import {
  listParked,
  type ParkedEvents,
  parkedListQuery,
  redriveBody,
  redriveRecorded,
} from '@flowloom/outbox';
import type { FastifyInstance } from 'fastify';
import type { AuthorizedAdmin } from '../app/admin-api.js';

export interface PolicyOutboxDeps {
  /** The events policy_outbox parked (the bus refused them for good). */
  parked: ParkedEvents;
  /** Commits an event to policy_outbox (the redrive's evidence) and has the relay publish it. */
  record(event: CloudEvent): Promise<void>;
  /** The service's event source (`flowloom/policy`). */
  source: string;
}

/**
 * /api/v1/policy-outbox/parked: the policy service's events the bus refused for good, kept in
 * policy_outbox while a stand-in holds their place on the audit trail, and publishing them again once
 * the cause is fixed; as the gateway's /api/v1/outbox/parked, with the same answers.
 */
export function registerPolicyOutboxRoutes(
  app: FastifyInstance,
  authorize: (headers: Record<string, string | string[] | undefined>) => Promise<AuthorizedAdmin>,
  deps: PolicyOutboxDeps,
): void {
  app.get('/api/v1/policy-outbox/parked', async (request, reply) => {
    await authorize(request.headers);
    const { limit } = parse(parkedListQuery, request.query);
    return reply.send(await listParked(deps.parked, limit));
  });

  app.post('/api/v1/policy-outbox/parked/redrive', async (request, reply) => {
    const admin = await authorize(request.headers);
    const { ids } = parse(redriveBody, request.body ?? {});
    // Who published what again is evidence too: the trail records the request and its outcome.
    const { outcome, evidence } = await redriveRecorded(deps.parked, {
      actor: admin.actor,
      ids,
      source: deps.source,
    });
    await deps.record(evidence);
    return reply.send(outcome);
  });
}

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../app/context.js';
import type { KeyActor } from '../app/keys-admin.js';
import type { HttpDeps } from './deps.js';
import { requestContext } from './request-context.js';

/** Admin endpoints need a key with the admin role. */
export async function adminContext(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: HttpDeps,
): Promise<RequestContext> {
  // Requires the admin role; refusals and (deduplicated) admin logins reach the audit trail.
  return requestContext(request, reply, deps.auth, 'openai', 'admin');
}

export function actorOf(ctx: RequestContext): string {
  return `key/${ctx.key.id} (${ctx.key.name})`;
}

/** The admin key acting on keys: a key it creates descends from it. */
export function keyActorOf(ctx: RequestContext): KeyActor {
  return { label: actorOf(ctx), keyId: ctx.key.id };
}

import { AppError } from '@flowloom/errors';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../app/context.js';
import type { HttpDeps } from './deps.js';
import { requestContext } from './request-context.js';

/** Admin endpoints need a key with the admin role. */
export async function adminContext(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: HttpDeps,
): Promise<RequestContext> {
  const ctx = await requestContext(request, reply, deps.auth, 'openai');
  if (ctx.key.role !== 'admin') {
    throw new AppError('forbidden', 'This endpoint needs an admin key.');
  }
  return ctx;
}

export function actorOf(ctx: RequestContext): string {
  return `key/${ctx.key.id} (${ctx.key.name})`;
}

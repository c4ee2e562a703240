import type { preParsingAsyncHookHandler } from 'fastify';
import type { RequestContext } from '../app/context.js';
import type { KeyActor } from '../app/keys-admin.js';
import type { HttpDeps } from './deps.js';
import { authenticateFirst } from './request-context.js';

/**
 * Admin endpoints need a key with the admin role, checked before the body is read (see
 * authenticateFirst); refusals and (deduplicated) admin logins reach the audit trail.
 */
export function adminFirst(deps: HttpDeps): preParsingAsyncHookHandler {
  return authenticateFirst(deps.auth, 'openai', 'admin');
}

export function actorOf(ctx: RequestContext): string {
  return `key/${ctx.key.id} (${ctx.key.name})`;
}

/** The admin key acting on keys: a key it creates descends from it. */
export function keyActorOf(ctx: RequestContext): KeyActor {
  return { label: actorOf(ctx), keyId: ctx.key.id };
}

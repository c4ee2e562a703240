import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError, fromHttpFrameworkError, toAdminHttpError, toOpenAIError } from '@flowloom/errors';
import type { Registry } from '@flowloom/telemetry';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AdminAuthorizer } from '../ports/admin.js';
import type { AuditLogger } from '../ports/logger.js';
import type { AuditHttpPlugin } from './routes.js';

/** The standalone audit service's HTTP server: the audit routes plus health endpoints and /metrics. */
export async function buildAuditHttpServer(
  routes: AuditHttpPlugin,
  authorizeAdmin: AdminAuthorizer,
  /** Each dependency's state: `ok`, or what is wrong and how to fix it; ready only when all are `ok`. */
  readiness: () => Promise<Record<string, string>>,
  logger: AuditLogger,
  registry: Registry,
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024, return503OnClosing: true });
  app.setErrorHandler((error, request, reply) => {
    const appError = fromHttpFrameworkError(error);
    if (appError.code === 'internal')
      logger.error({ err: error, url: request.url }, 'audit HTTP: unhandled error');
    const { status, headers, body } = toAdminHttpError(appError);
    return reply.code(status).headers(headers).type('application/json').send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(
        toOpenAIError(
          new AppError('not_found', `No endpoint ${request.method} ${request.url.split('?')[0]}.`),
        ),
      ),
  );
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const checks = await readiness();
    const ready = Object.values(checks).every((v) => v === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
  await routes(app, authorizeAdmin);
  return app;
}

function presented(headers: Record<string, string | string[] | undefined>): string | undefined {
  const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  const authorization = first(headers['authorization']);
  if (authorization?.toLowerCase().startsWith('bearer ')) return authorization.slice(7).trim();
  return first(headers['x-api-key'])?.trim();
}

/**
 * The standalone service's admin check: the configured admin key (FLOWLOOM_ADMIN_KEY), compared by
 * hash in constant time. Keys themselves belong to the gateway; in `flowloom up` the gateway's own
 * check is used instead.
 */
export function adminKeyAuthorizer(adminKey: string): AdminAuthorizer {
  const expected = createHash('sha256').update(adminKey).digest();
  return async (headers) => {
    const key = presented(headers);
    if (!key) throw new AppError('missing_api_key', 'Send an admin key: Authorization: Bearer <key>.');
    const actual = createHash('sha256').update(key).digest();
    if (!timingSafeEqual(actual, expected))
      throw new AppError('invalid_api_key', 'The key is not valid for the audit API.');
    return { actor: 'admin (FLOWLOOM_ADMIN_KEY)' };
  };
}

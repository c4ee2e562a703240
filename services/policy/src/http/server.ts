import { AppError, fromHttpFrameworkError, toAdminHttpError, toOpenAIError } from '@flowloom/errors';
import { createRegistry, type Registry } from '@flowloom/telemetry';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AdminAuthorizer } from './routes.js';

/**
 * The admin API on a server of its own, for a policy service that runs without a gateway in its
 * process, with /metrics (Prometheus) from `registry`. Errors use the OpenAI error shape, as on the gateway.
 */
export async function startPolicyHttp(
  routes: (app: FastifyInstance, authorize: AdminAuthorizer) => Promise<void>,
  authorize: AdminAuthorizer,
  host: string,
  port: number,
  registry: Registry = createRegistry(),
): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024, forceCloseConnections: 'idle' });
  app.setErrorHandler((error, _request, reply) => {
    const { status, headers, body } = toAdminHttpError(fromHttpFrameworkError(error));
    return reply.code(status).headers(headers).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(toOpenAIError(new AppError('not_found', `No endpoint ${request.method} ${request.url}.`))),
  );
  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
  await routes(app, authorize);
  await app.listen({ host, port });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`, close: () => app.close() };
}

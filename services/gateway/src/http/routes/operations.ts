import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps.js';

/** Whether the gateway can serve (/readyz, gRPC health): a degraded dependency with a working fallback (local limits) still serves. */
export function isReady(checks: Record<string, string>): boolean {
  return Object.values(checks).every(
    (v) => v === 'ok' || (v.startsWith('degraded:') && !v.endsWith('refusing requests')),
  );
}

/** /healthz (the process is alive), /readyz (it can serve: storage reachable), /metrics (Prometheus). */
export function registerOperations(app: FastifyInstance, deps: HttpDeps): void {
  app.get('/healthz', async (_request, reply) => reply.send({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const checks = await deps.readiness();
    const ready = isReady(checks);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await deps.registry.metrics();
    return reply.type(deps.registry.contentType).send(body);
  });
}

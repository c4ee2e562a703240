import type { FastifyInstance } from 'fastify';
import { keyAllowsModel } from '../../domain/keys.js';
import type { HttpDeps } from '../deps.js';
import { authenticateFirst, callerOf } from '../request-context.js';

/** GET /v1/models — the models this key may use, in the OpenAI list format. */
export function registerOpenAIModels(app: FastifyInstance, deps: HttpDeps): void {
  app.get(
    '/v1/models',
    { config: { format: 'openai' }, preParsing: authenticateFirst(deps.auth, 'openai') },
    async (request, reply) => {
      const ctx = callerOf(request);
      const created = Math.floor(Date.now() / 1000);
      const data = deps.router
        .listModels()
        .filter((m) => keyAllowsModel(ctx.key, m.id))
        .map((m) => ({ id: m.id, object: 'model', created, owned_by: m.ownedBy }));
      return reply.send({ object: 'list', data });
    },
  );
}

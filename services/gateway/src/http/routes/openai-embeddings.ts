import { decodeOpenAIEmbeddingsRequest, encodeOpenAIEmbeddingsResponse } from '@flowloom/providers';
import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps.js';
import { authenticateFirst, callerOf } from '../request-context.js';
import { callOptions, routingHeaders } from './openai-chat.js';

/** POST /v1/embeddings — the OpenAI Embeddings API. */
export function registerOpenAIEmbeddings(app: FastifyInstance, deps: HttpDeps): void {
  app.post(
    '/v1/embeddings',
    { config: { format: 'openai' }, preParsing: authenticateFirst(deps.auth, 'openai') },
    async (request, reply) => {
      const ctx = callerOf(request);
      const embeddings = decodeOpenAIEmbeddingsRequest(request.body);
      const result = await deps.embeddings.embed(ctx, embeddings, callOptions(request, reply));
      return reply
        .headers(routingHeaders(String(request.id), result.deployment.id, result.attempts, result.decisionId))
        .send(encodeOpenAIEmbeddingsResponse(result.response, embeddings.model, embeddings.encodingFormat));
    },
  );
}

import { anthropicCaller } from '@flowloom/providers';
import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps.js';
import { authenticateFirst, callerOf } from '../request-context.js';
import { writeSse } from '../sse.js';
import { callOptions, routingHeaders } from './openai-chat.js';

/** POST /v1/messages — the Anthropic Messages API, streamed or not, reaching any provider. */
export function registerAnthropicMessages(app: FastifyInstance, deps: HttpDeps): void {
  app.post(
    '/v1/messages',
    { config: { format: 'anthropic' }, preParsing: authenticateFirst(deps.auth, 'anthropic') },
    async (request, reply) => {
      const ctx = callerOf(request);
      const chat = anthropicCaller.decodeChatRequest(request.body, request.headers);
      const options = callOptions(request, reply);
      if (chat.stream) {
        const stream = await deps.chat.stream(ctx, chat, options);
        const encoder = anthropicCaller.createStreamEncoder(chat.model, { includeUsage: true });
        await writeSse(
          reply,
          stream,
          encoder,
          routingHeaders(String(request.id), stream.deployment.id, stream.attempts, stream.decisionId),
          'anthropic',
        );
        deps.metrics.request(
          { api: 'anthropic', status: 200, stream: true },
          (performance.now() - ctx.startedAt) / 1000,
        );
        return reply;
      }
      const result = await deps.chat.complete(ctx, chat, options);
      return reply
        .headers(routingHeaders(String(request.id), result.deployment.id, result.attempts, result.decisionId))
        .send(anthropicCaller.encodeChatResponse(result.response, chat.model));
    },
  );
}

import { openAICaller } from '@flowloom/providers';
import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps.js';
import { requestContext } from '../request-context.js';
import { writeSse } from '../sse.js';

/** POST /v1/chat/completions — the OpenAI Chat Completions API, streamed or not. */
export function registerOpenAIChat(app: FastifyInstance, deps: HttpDeps): void {
  app.post('/v1/chat/completions', { config: { format: 'openai' } }, async (request, reply) => {
    const ctx = await requestContext(request, reply, deps.auth, 'openai');
    const chat = openAICaller.decodeChatRequest(request.body);
    if (chat.stream) {
      const stream = await deps.chat.stream(ctx, chat);
      const encoder = openAICaller.createStreamEncoder(chat.model, {
        includeUsage: chat.includeUsage === true,
      });
      await writeSse(
        reply,
        stream,
        encoder,
        routingHeaders(String(request.id), stream.deployment.id, stream.attempts),
        'openai',
      );
      deps.metrics.request(
        { api: 'openai', status: 200, stream: true },
        (performance.now() - ctx.startedAt) / 1000,
      );
      return reply;
    }
    const result = await deps.chat.complete(ctx, chat);
    return reply
      .headers(routingHeaders(String(request.id), result.deployment.id, result.attempts))
      .send(openAICaller.encodeChatResponse(result.response, chat.model));
  });
}

export function routingHeaders(
  requestId: string,
  deployment: string,
  attempts: number,
): Record<string, string> {
  return {
    'x-request-id': requestId,
    'x-flowloom-deployment': deployment,
    'x-flowloom-attempts': String(attempts),
  };
}

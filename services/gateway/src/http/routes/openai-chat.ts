import { openAICaller } from '@flowloom/providers';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CallOptions } from '../../app/chat.js';
import type { HttpDeps } from '../deps.js';
import { authenticateFirst, callerOf } from '../request-context.js';
import { writeSse } from '../sse.js';

/** POST /v1/chat/completions — the OpenAI Chat Completions API, streamed or not. */
export function registerOpenAIChat(app: FastifyInstance, deps: HttpDeps): void {
  app.post(
    '/v1/chat/completions',
    { config: { format: 'openai' }, preParsing: authenticateFirst(deps.auth, 'openai') },
    async (request, reply) => {
      const ctx = callerOf(request);
      const chat = openAICaller.decodeChatRequest(request.body);
      const options = callOptions(request, reply);
      if (chat.stream) {
        const stream = await deps.chat.stream(ctx, chat, options);
        const encoder = openAICaller.createStreamEncoder(chat.model, {
          includeUsage: chat.includeUsage === true,
        });
        await writeSse(
          reply,
          stream,
          encoder,
          routingHeaders(String(request.id), stream.deployment.id, stream.attempts, stream.decisionId),
          'openai',
        );
        deps.metrics.request(
          { api: 'openai', status: 200, stream: true },
          (performance.now() - ctx.startedAt) / 1000,
        );
        return reply;
      }
      const result = await deps.chat.complete(ctx, chat, options);
      return reply
        .headers(routingHeaders(String(request.id), result.deployment.id, result.attempts, result.decisionId))
        .send(openAICaller.encodeChatResponse(result.response, chat.model));
    },
  );
}

export function routingHeaders(
  requestId: string,
  deployment: string,
  attempts: number,
  decisionId?: string,
): Record<string, string> {
  return {
    'x-request-id': requestId,
    'x-flowloom-deployment': deployment,
    'x-flowloom-attempts': String(attempts),
    ...(decisionId ? { 'x-flowloom-decision': decisionId } : {}),
  };
}

/**
 * The request's headers (a policy may read them) and `x-flowloom-decision` set as soon as a policy
 * decided, so refusals carry it too.
 */
export function callOptions(request: FastifyRequest, reply: FastifyReply): CallOptions {
  return {
    headers: request.headers,
    onDecision: (id) => {
      reply.header('x-flowloom-decision', id);
    },
  };
}

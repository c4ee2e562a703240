import { AppError } from '@flowloom/errors';
import { decodeGeminiRequest, geminiCaller, parseGeminiPath } from '@flowloom/providers';
import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps.js';
import { authenticateFirst, callerOf } from '../request-context.js';
import { writeSse } from '../sse.js';
import { callOptions, routingHeaders } from './openai-chat.js';

/**
 * POST /v1beta/models/{model}:generateContent and :streamGenerateContent — the Gemini API, so
 * `@google/genai` clients reach every provider too.
 */
export function registerGeminiGenerate(app: FastifyInstance, deps: HttpDeps): void {
  app.post(
    '/v1beta/models/*',
    { config: { format: 'gemini' }, preParsing: authenticateFirst(deps.auth, 'gemini') },
    async (request, reply) => {
      const route = parseGeminiPath(request.url.split('?')[0] ?? '');
      if (!route) {
        throw new AppError(
          'not_found',
          'Use /v1beta/models/{model}:generateContent or :streamGenerateContent.',
        );
      }
      const ctx = callerOf(request);
      const chat = decodeGeminiRequest(request.body, route);
      const options = callOptions(request, reply);
      if (route.stream) {
        const stream = await deps.chat.stream(ctx, chat, options);
        const encoder = geminiCaller.createStreamEncoder(route.model, { includeUsage: true });
        await writeSse(
          reply,
          stream,
          encoder,
          routingHeaders(String(request.id), stream.deployment.id, stream.attempts, stream.decisionId),
          'gemini',
        );
        deps.metrics.request(
          { api: 'gemini', status: 200, stream: true },
          (performance.now() - ctx.startedAt) / 1000,
        );
        return reply;
      }
      const result = await deps.chat.complete(ctx, chat, options);
      return reply
        .headers(routingHeaders(String(request.id), result.deployment.id, result.attempts, result.decisionId))
        .send(geminiCaller.encodeChatResponse(result.response, route.model));
    },
  );
}

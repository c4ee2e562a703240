import { uuidv7 } from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import type { Logger } from '@flowloom/telemetry';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { HttpDeps } from './deps.js';
import { type ErrorFormat, fromFastifyError, sendError } from './errors.js';
import { registerJsonParser } from './json-body.js';
import { registerAdminKeys } from './routes/admin-keys.js';
import { registerAnthropicMessages } from './routes/anthropic-messages.js';
import { registerGeminiGenerate } from './routes/gemini-generate.js';
import { registerOpenAIChat } from './routes/openai-chat.js';
import { registerOpenAIEmbeddings } from './routes/openai-embeddings.js';
import { registerOpenAIModels } from './routes/openai-models.js';
import { registerOpenApi } from './routes/openapi.js';
import { registerOperations } from './routes/operations.js';
import { answeredWithStream } from './sse.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    format?: ErrorFormat;
  }
}

function formatFor(url: string, configured: ErrorFormat | undefined): ErrorFormat {
  if (configured) return configured;
  if (url.startsWith('/v1/messages')) return 'anthropic';
  return url.startsWith('/v1beta/') ? 'gemini' : 'openai';
}

export interface ServedRoute {
  readonly method: string;
  /** Fastify's pattern, e.g. `/api/v1/keys/:id`. */
  readonly url: string;
}

const served = new WeakMap<FastifyInstance, ServedRoute[]>();

/** Every route the server serves, plugins' included (HEAD and OPTIONS left out). */
export function servedRoutes(app: FastifyInstance): readonly ServedRoute[] {
  return served.get(app) ?? [];
}

/** The HTTP API: OpenAI- and Anthropic-compatible endpoints, the admin API and operations endpoints. */
export function buildHttpServer(deps: HttpDeps, log: Logger): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.maxBodyBytes,
    genReqId: () => uuidv7(),
    // A caller-supplied id would let anyone forge audit correlation; we always mint our own.
    requestIdHeader: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  });
  registerJsonParser(app);
  const routes: ServedRoute[] = [];
  served.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD' && method !== 'OPTIONS') routes.push({ method, url: route.url });
    }
  });

  // Declared up front so every request object has the same shape (a property added per request
  // changes its hidden class on the hot path). The hooks below take `done` rather than being async:
  // they do nothing asynchronous, and an async hook costs a promise and a microtask hop per request.
  app.decorateRequest('startedAt', 0);
  app.decorateRequest('caller', null);
  app.addHook('onRequest', (request, reply, done) => {
    request.startedAt = performance.now();
    const id = String(request.id);
    reply.header('x-request-id', id);
    // Anthropic's API names it request-id, where its SDK reads it (error.requestID, _request_id).
    if (request.url.startsWith('/v1/messages')) reply.header('request-id', id);
    done();
  });

  app.addHook('onResponse', (request, reply, done) => {
    observeResponse(request, reply);
    done();
  });

  const observeResponse = (request: FastifyRequest, reply: FastifyReply): void => {
    // The route's own config holds its url; `request.routeOptions` builds a new object per read.
    const config = request.routeOptions.config;
    const route = config?.url ?? 'unmatched';
    if (!route.startsWith('/v1/')) return;
    const seconds = (performance.now() - request.startedAt) / 1000;
    // A streamed answer is counted by its route, with stream="true", when the stream ends.
    if (!answeredWithStream(request))
      deps.metrics.request(
        {
          api: formatFor(route, config.format),
          status: reply.statusCode,
          stream: false,
        },
        seconds,
      );
    if (log.isLevelEnabled('info')) {
      log.info(
        {
          requestId: request.id,
          method: request.method,
          route,
          status: reply.statusCode,
          ms: Math.round(seconds * 1000),
        },
        'request',
      );
    }
  };

  app.setErrorHandler((error, request, reply) => {
    const appError = fromFastifyError(error, deps.maxBodyBytes);
    if (appError.code === 'internal') log.error({ requestId: request.id, err: error }, 'unhandled error');
    return sendError(reply, formatFor(request.url, request.routeOptions.config?.format), appError);
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      formatFor(request.url, undefined),
      new AppError(
        'not_found',
        `No endpoint ${request.method} ${request.url.split('?')[0]}. See /api/v1/openapi.json.`,
      ),
    ),
  );

  registerOpenAIChat(app, deps);
  registerOpenAIEmbeddings(app, deps);
  registerOpenAIModels(app, deps);
  registerAnthropicMessages(app, deps);
  registerGeminiGenerate(app, deps);
  registerAdminKeys(app, deps);
  registerOperations(app, deps);
  registerOpenApi(app, deps.mountedApiDocuments);
  return app;
}

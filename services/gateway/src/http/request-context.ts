import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Authenticator, presentedKey } from '../app/authenticate.js';
import type { CallerApi, RequestContext } from '../app/context.js';
import { requestTags } from '../app/request-tags.js';

/** A tag header as sent: repeated, it is a list, which no tag is. */
function tag(request: FastifyRequest, name: string): { value: string | undefined; name: string } {
  const value = request.headers[name];
  return { value: Array.isArray(value) ? value.join(', ') : value, name };
}

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Gemini clients may pass the key as `?key=` (the @google/genai SDK uses the header). */
function googKeyParam(request: FastifyRequest, api: CallerApi): string | undefined {
  if (api !== 'gemini') return undefined;
  const query = request.query as Record<string, unknown> | undefined;
  return typeof query?.key === 'string' ? query.key : undefined;
}

/** Authenticates the caller and ties the request's lifetime to the connection. */
export async function requestContext(
  request: FastifyRequest,
  reply: FastifyReply,
  auth: Authenticator,
  api: CallerApi,
  surface: 'model' | 'admin' = 'model',
): Promise<RequestContext> {
  const secret = presentedKey({
    authorization: header(request, 'authorization'),
    'x-api-key': header(request, 'x-api-key'),
    'x-goog-api-key': header(request, 'x-goog-api-key') ?? googKeyParam(request, api),
  });
  const attempt = {
    surface,
    api: surface === 'admin' ? 'admin' : api,
    requestId: String(request.id),
    sourceIp: request.ip,
  };
  const key =
    surface === 'admin'
      ? await auth.authenticateAdmin(secret, attempt)
      : await auth.authenticate(secret, attempt);
  const tags = requestTags(key, {
    job: tag(request, 'x-flowloom-job'),
    session: tag(request, 'x-flowloom-session'),
    project: tag(request, 'x-flowloom-project'),
  });
  const controller = new AbortController();
  // The response closing before it finished means the caller went away: cancel the upstream call.
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
  });
  return {
    requestId: String(request.id),
    api,
    key,
    tags,
    signal: controller.signal,
    startedAt: request.startedAt,
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() at arrival. */
    startedAt: number;
  }
}

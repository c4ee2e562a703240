import type { ServerResponse } from 'node:http';
import { LazyAbort } from '@flowloom/providers';
import type { FastifyReply, FastifyRequest, preParsingAsyncHookHandler } from 'fastify';
import { type Authenticator, presentedKey } from '../app/authenticate.js';
import type { CallerApi, RequestContext } from '../app/context.js';
import { requestTags } from '../app/request-tags.js';
import type { KeyRecord } from '../domain/keys.js';

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
async function requestContext(
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
  return new HttpRequestContext(String(request.id), api, key, tags, request.startedAt, reply.raw);
}

/**
 * A route's `preParsing` hook: the caller is authenticated before the body is read, so that a
 * refused key is refused, and recorded in the audit trail, whatever came with it (malformed JSON, a
 * body over the limit, a content type we do not take); parsed first, those answered 400, 413 or 415
 * and the attempt went unrecorded. The handler takes the context with `callerOf`.
 */
export function authenticateFirst(
  auth: Authenticator,
  api: CallerApi,
  surface: 'model' | 'admin' = 'model',
): preParsingAsyncHookHandler {
  return async (request, reply) => {
    request.caller = await requestContext(request, reply, auth, api, surface);
  };
}

/** The caller `authenticateFirst` authenticated for this request. */
export function callerOf(request: FastifyRequest): RequestContext {
  if (request.caller === null) {
    throw new Error(`the route ${request.url} reads its caller but does not authenticate it first`);
  }
  return request.caller;
}

/**
 * The context of a request over HTTP. Its caller has gone when the response closes before it
 * finished; what listens for that is told then (the upstream call is cancelled). The AbortSignal is
 * made only for code that asks for it: the upstream attempts listen through `whenGone`.
 */
class HttpRequestContext implements RequestContext {
  private readonly left = new LazyAbort();

  constructor(
    readonly requestId: string,
    readonly api: CallerApi,
    readonly key: KeyRecord,
    readonly tags: RequestContext['tags'],
    readonly startedAt: number,
    response: ServerResponse,
  ) {
    response.once('close', () => {
      if (!response.writableFinished) this.left.abort(new Error('client disconnected'));
    });
  }

  get gone(): boolean {
    return this.left.aborted;
  }

  get signal(): AbortSignal {
    return this.left.signal;
  }

  whenGone(listener: () => void): () => void {
    return this.left.whenAborted(listener);
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() at arrival. */
    startedAt: number;
    /** Set by `authenticateFirst` before the body is read. */
    caller: RequestContext | null;
  }
}

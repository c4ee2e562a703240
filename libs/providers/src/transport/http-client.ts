import { AppError } from '@flowloom/errors';
import { Agent, type Dispatcher } from 'undici';
import { type Cancellation, signalCancellation } from '../cancellation.js';
import type {
  ChatRequest,
  ChatResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  StreamEvent,
} from '../canonical.js';
import type { ProviderClient, ProviderEndpoint, UpstreamCall } from '../client.js';
import { UnsupportedRequest, UpstreamFailure } from '../client.js';
import type { HttpProviderSpec } from '../registry.js';
import { SseParser } from '../sse.js';
import { bufferedRequest } from './buffered-request.js';
import { parseRetryAfter, retryAfterFromBody } from './retry-after.js';

/** One connection pool per process keeps sockets warm across providers and requests. */
let sharedAgent: Agent | undefined;
function agent(): Agent {
  sharedAgent ??= new Agent({
    connections: 512,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: { timeout: 10_000 },
  });
  return sharedAgent;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Turns whatever undici or the network threw into an UpstreamFailure that routing understands. */
function classify(
  error: unknown,
  signal: Pick<Cancellation, 'aborted' | 'reason'>,
  provider: string,
): UpstreamFailure {
  if (error instanceof UpstreamFailure) return error;
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
    return timedOut
      ? new UpstreamFailure('timeout', `${provider} did not answer in time`)
      : new UpstreamFailure('aborted', 'the caller went away');
  }
  const code = (error as { code?: unknown }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new UpstreamFailure('timeout', `${provider} did not answer in time`);
  }
  if (typeof code === 'string' && NETWORK_CODES.has(code)) {
    return new UpstreamFailure('connection', `cannot reach ${provider} (${code})`);
  }
  return new UpstreamFailure(
    'connection',
    `request to ${provider} failed: ${(error as Error).message ?? 'unknown error'}`,
  );
}

/**
 * `request` as sent with `stream` set. Usually it already is (the caller asked for what it gets), and
 * the encoders only read it, so no copy is made then.
 */
function withStream(request: ChatRequest, stream: boolean): ChatRequest {
  return request.stream === stream ? request : Object.assign({}, request, { stream });
}

/** Where a URL points, parsed once per distinct URL (a provider's URLs repeat on every request). */
const targets = new Map<string, { origin: string; path: string }>();
function targetOf(url: string): { origin: string; path: string } {
  let target = targets.get(url);
  if (!target) {
    const parsed = new URL(url);
    target = { origin: parsed.origin, path: parsed.pathname + parsed.search };
    if (targets.size >= 1_000) targets.clear();
    targets.set(url, target);
  }
  return target;
}

function cancellationOf(call: UpstreamCall<unknown>): Cancellation {
  return call.cancel ?? signalCancellation(call.signal);
}

function redactCredential(text: string, credential: string | undefined): string {
  if (!credential || credential.length < 6) return text;
  return text.split(credential).join('[redacted]');
}

export function createHttpProviderClient(endpoint: ProviderEndpoint, spec: HttpProviderSpec): ProviderClient {
  const base = endpoint.baseUrl ?? spec.defaultBaseUrl;
  if (!base) throw new Error(`provider "${endpoint.name}" needs a baseUrl`);
  const staticHeaders = {
    'content-type': 'application/json',
    ...endpoint.headers,
    ...spec.authHeaders(endpoint),
  };
  const label = `provider "${endpoint.name}"`;

  /** The failure a non-2xx answer means, with the provider's own words (credential redacted). */
  function answerFailure(
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    text: string,
  ): UpstreamFailure {
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON: decodeError gets the raw text.
    }
    const decoded = spec.wire.decodeError(statusCode, parsed);
    const type = decoded.type;
    // Some providers echo the presented credential in their error text; it must never travel further.
    const message = redactCredential(decoded.message, endpoint.apiKey);
    return new UpstreamFailure(
      'http',
      `${label} answered ${statusCode}: ${message}`,
      statusCode,
      parseRetryAfter(headers) ?? retryAfterFromBody(parsed),
      type,
    );
  }

  function headersFor(callHeaders: Record<string, string> | undefined): Record<string, string> {
    return callHeaders ? { ...callHeaders, ...staticHeaders } : staticHeaders;
  }

  /** A streamed call: the answer's body is read as it arrives. */
  async function send(
    url: string,
    body: unknown,
    signal: AbortSignal,
    callHeaders?: Record<string, string>,
  ): Promise<Dispatcher.ResponseData> {
    const target = targetOf(url);
    const response = await agent().request({
      origin: target.origin,
      path: target.path,
      method: 'POST',
      headers: { ...headersFor(callHeaders), accept: 'text/event-stream' },
      body: JSON.stringify(body),
      signal,
    });
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    const text = await response.body.text().catch(() => '');
    throw answerFailure(response.statusCode, response.headers, text);
  }

  /** A call answered with one JSON document. */
  async function json(
    url: string,
    body: unknown,
    cancel: Cancellation,
    callHeaders?: Record<string, string>,
  ): Promise<unknown> {
    try {
      const target = targetOf(url);
      const answer = await bufferedRequest(
        agent(),
        {
          origin: target.origin,
          path: target.path,
          method: 'POST',
          headers: headersFor(callHeaders),
          body: JSON.stringify(body),
        },
        cancel,
      );
      if (answer.statusCode < 200 || answer.statusCode >= 300)
        throw answerFailure(answer.statusCode, answer.headers(), answer.text);
      try {
        return JSON.parse(answer.text);
      } catch {
        throw new UpstreamFailure('bad_response', `${label} returned a body that is not JSON`);
      }
    } catch (error) {
      throw classify(error, cancel, label);
    }
  }

  function decodeOrFail<T>(decode: () => T): T {
    try {
      return decode();
    } catch (error) {
      // An `error` frame in a stream is the provider reporting a failure, not a malformed answer.
      if (error instanceof AppError && error.code === 'upstream_error') {
        throw new UpstreamFailure(
          'http',
          `${label} reported an error mid-stream: ${redactCredential(error.message, endpoint.apiKey)}`,
          502,
        );
      }
      throw new UpstreamFailure(
        'bad_response',
        `${label} returned an unexpected answer: ${(error as Error).message}`,
      );
    }
  }

  /** A codec's `invalid_request` means this provider cannot take the request as it stands. */
  function encodeOrReject<T>(encode: () => T): T {
    try {
      return encode();
    } catch (error) {
      if (error instanceof AppError && error.code === 'invalid_request')
        throw new UnsupportedRequest(label, error.message, error.param);
      throw error;
    }
  }

  return {
    endpoint,
    // `call.signal` is left unread when `call.cancel` is given (it may be made on first read).
    async chat(call: UpstreamCall<ChatRequest>): Promise<ChatResponse> {
      const { request, model } = call;
      const body = encodeOrReject(() => spec.wire.encodeChatRequest(withStream(request, false), model));
      const raw = await json(
        spec.chatUrl(base, endpoint, model, false),
        body,
        cancellationOf(call),
        spec.chatHeaders?.(request),
      );
      return decodeOrFail(() => spec.wire.decodeChatResponse(raw));
    },

    async *chatStream({
      request,
      model,
      signal,
    }: UpstreamCall<ChatRequest>): AsyncGenerator<StreamEvent, void, undefined> {
      const body = encodeOrReject(() => spec.wire.encodeChatRequest(withStream(request, true), model));
      let response: Dispatcher.ResponseData;
      try {
        response = await send(
          spec.chatUrl(base, endpoint, model, true),
          body,
          signal,
          spec.chatHeaders?.(request),
        );
      } catch (error) {
        throw classify(error, signal, label);
      }
      const parser = new SseParser();
      const decoder = spec.wire.createStreamDecoder();
      try {
        for await (const chunk of response.body) {
          for (const message of parser.push(chunk as Buffer)) {
            const events = decodeOrFail(() => decoder.push(message));
            for (const event of events) yield event;
          }
        }
        for (const message of parser.end()) {
          for (const event of decodeOrFail(() => decoder.push(message))) yield event;
        }
      } catch (error) {
        // An upstream `error` frame mid-stream is reported as what it says, not as a broken connection.
        if (error instanceof UpstreamFailure) throw error;
        throw classify(error, signal, label);
      } finally {
        if (!response.body.destroyed) response.body.destroy();
      }
      if (!decoder.done)
        throw new UpstreamFailure('connection', `${label} closed the stream before it finished`);
    },

    async embeddings(call: UpstreamCall<EmbeddingsRequest>): Promise<EmbeddingsResponse> {
      const { request, model } = call;
      const encode = spec.wire.encodeEmbeddingsRequest;
      const decode = spec.wire.decodeEmbeddingsResponse;
      if (!spec.embeddingsUrl || !encode || !decode) {
        throw new UpstreamFailure('http', `${label} does not offer embeddings`, 404);
      }
      const body = encodeOrReject(() => encode(request, model));
      const raw = await json(spec.embeddingsUrl(base, endpoint, model), body, cancellationOf(call));
      return decodeOrFail(() => decode(raw));
    },

    async close() {},
  };
}

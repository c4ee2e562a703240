import type {
  Headers,
  HttpAnswer,
  IncomingCall,
  ModelCall,
  ProviderRouter,
  Routed,
  StreamErrorSpec,
  StreamFrame,
} from './server.js';
import type { FakeErrorBehaviour, FakeFinish, FakeReplyContent } from './types.js';
import {
  argumentsObject,
  asArray,
  asString,
  embeddingVector,
  estimatePromptTokens,
  isRecord,
  numberField,
  type ResolvedAnswer,
  randomId,
  resolveAnswer,
} from './util.js';

export const GEMINI_MODELS: readonly string[] = [
  'gemini-3-pro-preview',
  'gemini-3-flash-preview',
  'gemini-2.5-pro',
  'gemini-2.5-flash',
  'gemini-2.5-flash-lite',
  'gemini-2.0-flash',
  'gemini-2.0-flash-001',
  'gemini-2.0-flash-lite',
  'gemini-1.5-pro',
  'gemini-1.5-flash',
  'gemini-embedding-001',
  'text-embedding-004',
];

const EMBEDDING_DIMENSIONS: Readonly<Record<string, number>> = {
  'gemini-embedding-001': 3072,
  'text-embedding-004': 768,
};

// Google's front end labels JSON with an upper-case charset and pretty-prints bodies.
const JSON_TYPE = 'application/json; charset=UTF-8';
const STATIC_HEADERS: Headers = {
  server: 'scaffolding on HTTPServer2',
  vary: 'Origin, X-Origin, Referer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
  'x-xss-protection': '0',
};

const STATUS_NAMES: Readonly<Record<number, readonly [string, string]>> = {
  400: ['INVALID_ARGUMENT', 'Request contains an invalid argument.'],
  401: [
    'UNAUTHENTICATED',
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  ],
  403: ['PERMISSION_DENIED', 'The caller does not have permission'],
  404: ['NOT_FOUND', 'Requested entity was not found.'],
  429: [
    'RESOURCE_EXHAUSTED',
    'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.',
  ],
  499: ['CANCELLED', 'The operation was cancelled.'],
  500: [
    'INTERNAL',
    'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  ],
  503: ['UNAVAILABLE', 'The model is overloaded. Please try again later.'],
  504: ['DEADLINE_EXCEEDED', 'Deadline expired before operation could complete.'],
};

function statusDefaults(status: number): readonly [string, string] {
  return (
    STATUS_NAMES[status] ??
    (status >= 500 ? ['INTERNAL', 'Internal error'] : ['INVALID_ARGUMENT', 'Bad request'])
  );
}

function finishReason(finish: FakeFinish): string {
  switch (finish) {
    case 'length':
      return 'MAX_TOKENS';
    case 'content_filter':
      return 'SAFETY';
    default:
      // Gemini reports function calls and stop sequences as a plain STOP.
      return 'STOP';
  }
}

function pretty(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function usageMetadata(answer: ResolvedAnswer, candidates: number): Record<string, unknown> {
  const { input, cached, reasoning } = answer.usage;
  // Gemini counts thoughts apart from the candidates; the neutral output count includes them.
  const thoughts = Math.min(reasoning, candidates);
  const usage: Record<string, unknown> = {
    promptTokenCount: input,
    candidatesTokenCount: candidates - thoughts,
    totalTokenCount: input + candidates,
  };
  if (cached > 0) usage['cachedContentTokenCount'] = cached;
  if (thoughts > 0) usage['thoughtsTokenCount'] = thoughts;
  usage['promptTokensDetails'] = [{ modality: 'TEXT', tokenCount: input }];
  if (cached > 0) usage['cacheTokensDetails'] = [{ modality: 'TEXT', tokenCount: cached }];
  return usage;
}

export interface GeminiRouterOptions {
  apiKey: string | undefined;
  models: readonly string[];
}

const PATH = /^\/(v1beta|v1)\/models\/([^/:]+):([A-Za-z]+)$/;
const MODEL_PATH = /^\/(v1beta|v1)\/models(?:\/([^/:]+))?$/;

export function createGeminiRouter(options: GeminiRouterOptions): ProviderRouter {
  const known = new Set(options.models);

  const json = (status: number, body: unknown): HttpAnswer => ({
    status,
    headers: { ...STATIC_HEADERS, 'content-type': JSON_TYPE },
    body: pretty(body),
  });

  const errorAnswer = (
    status: number,
    message?: string,
    statusName?: string,
    details?: unknown[],
  ): HttpAnswer => {
    const [name, defaultMessage] = statusDefaults(status);
    const error: Record<string, unknown> = {
      code: status,
      message: message ?? defaultMessage,
      status: statusName ?? name,
    };
    if (details !== undefined && details.length > 0) error['details'] = details;
    return json(status, { error });
  };

  const behaviourError = (behaviour: FakeErrorBehaviour): HttpAnswer => {
    const details: unknown[] = [];
    if (behaviour.status === 429) {
      details.push({
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: [
          {
            quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
            quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
          },
        ],
      });
      details.push({
        '@type': 'type.googleapis.com/google.rpc.Help',
        links: [
          {
            description: 'Learn more about Gemini API quotas',
            url: 'https://ai.google.dev/gemini-api/docs/rate-limits',
          },
        ],
      });
    }
    // Google signals the wait in the body (google.rpc.RetryInfo), not in a retry-after header.
    if (behaviour.retryAfter !== undefined) {
      details.push({
        '@type': 'type.googleapis.com/google.rpc.RetryInfo',
        retryDelay: `${behaviour.retryAfter}s`,
      });
    }
    const answer = errorAnswer(behaviour.status, behaviour.message, behaviour.type, details);
    return { ...answer, headers: { ...answer.headers, ...behaviour.headers } };
  };

  const streamErrorFrame = (spec: StreamErrorSpec): string => {
    const status = spec.status;
    const [name, message] = statusDefaults(status);
    return `data: ${JSON.stringify({ error: { code: status, message: spec.message ?? message, status: spec.type ?? name } })}\r\n\r\n`;
  };

  const garbageFrames = (): string =>
    'data: {"candidates": [{"content": {"parts": [{"text": "tru\r\n\r\n' +
    'data: <html><body>upstream proxy error</body></html>\r\n\r\n';

  function generateCall(
    body: Record<string, unknown>,
    model: string,
    stream: boolean,
    sse: boolean,
  ): ModelCall {
    const contents = asArray(body['contents']);
    let promptText = '';
    const system = body['systemInstruction'] ?? body['system_instruction'];
    if (isRecord(system)) {
      for (const part of asArray(system['parts'])) {
        if (isRecord(part)) promptText += asString(part['text']) ?? '';
      }
    }
    let lastUserText = '';
    for (const content of contents) {
      if (!isRecord(content)) continue;
      let text = '';
      for (const part of asArray(content['parts'])) {
        if (isRecord(part)) text += asString(part['text']) ?? '';
      }
      promptText += text;
      if (content['role'] === undefined || content['role'] === 'user') lastUserText = text;
    }
    const context = {
      provider: 'gemini',
      model,
      lastUserText,
      promptText,
      promptMessages: contents.length,
      maxTokens: isRecord(body['generationConfig'])
        ? numberField(body['generationConfig'], 'maxOutputTokens')
        : undefined,
    };
    const responseHeaders: Headers = { ...STATIC_HEADERS };

    const functionParts = (answer: ResolvedAnswer): unknown[] =>
      answer.toolCalls.map((call) => ({
        functionCall: {
          ...(call.id !== undefined ? { id: call.id } : {}),
          name: call.name,
          args: argumentsObject(call),
        },
      }));

    const response = (
      answer: ResolvedAnswer,
      responseId: string,
      parts: unknown[],
      finish: boolean,
      candidatesTokens: number,
    ): Record<string, unknown> => {
      const candidate: Record<string, unknown> = { content: { parts, role: 'model' } };
      if (finish) candidate['finishReason'] = finishReason(answer.finish);
      candidate['index'] = 0;
      return {
        candidates: [candidate],
        usageMetadata: usageMetadata(answer, candidatesTokens),
        modelVersion: answer.model,
        responseId,
      };
    };

    return {
      stream,
      baseHeaders: () => responseHeaders,
      error: behaviourError,
      streamErrorFrame,
      garbageFrames,
      faultStatus: 500,
      reply(content: FakeReplyContent): HttpAnswer {
        const answer = resolveAnswer(content, context);
        const parts: unknown[] = [];
        if (answer.text.length > 0 || answer.toolCalls.length === 0) parts.push({ text: answer.text });
        parts.push(...functionParts(answer));
        return json(200, response(answer, randomId(22), parts, true, answer.usage.output));
      },
      streamPlan(content: FakeReplyContent) {
        const answer = resolveAnswer(content, context);
        const responseId = randomId(22);
        const pieces: unknown[][] = answer.chunks
          .filter((piece) => piece.length > 0)
          .map((piece) => [{ text: piece }]);
        if (answer.toolCalls.length > 0) pieces.push(functionParts(answer));
        if (pieces.length === 0) pieces.push([{ text: '' }]);
        const frames: StreamFrame[] = [];
        const total = pieces.length;
        pieces.forEach((parts, i) => {
          const last = i === total - 1;
          // Usage grows with each chunk; the last one carries the exact totals.
          const candidates = last
            ? answer.usage.output
            : Math.max(1, Math.floor((answer.usage.output * (i + 1)) / total));
          const data = JSON.stringify(response(answer, responseId, parts, last, candidates));
          if (sse) frames.push({ data: `data: ${data}\r\n\r\n`, content: true });
          else frames.push({ data: `${i === 0 ? '[' : ',\r\n'}${data}${last ? ']' : ''}`, content: true });
        });
        return {
          headers: {
            ...responseHeaders,
            'content-type': sse ? 'text/event-stream' : JSON_TYPE,
            'cache-control': 'no-cache',
          },
          frames,
        };
      },
    };
  }

  function embedCall(
    model: string,
    inputs: readonly string[],
    dimensions: number,
    batch: boolean,
  ): ModelCall {
    const responseHeaders: Headers = { ...STATIC_HEADERS };
    return {
      stream: false,
      baseHeaders: () => responseHeaders,
      error: behaviourError,
      streamErrorFrame,
      garbageFrames,
      faultStatus: 500,
      streamPlan() {
        throw new Error(`${model}: embeddings are never streamed`);
      },
      reply(): HttpAnswer {
        const embeddings = inputs.map((input) => ({
          values: Array.from(embeddingVector(input, dimensions)),
        }));
        return json(200, batch ? { embeddings } : { embedding: embeddings[0] });
      },
    };
  }

  function textOfParts(content: unknown): string {
    let text = '';
    if (isRecord(content)) {
      for (const part of asArray(content['parts'])) {
        if (isRecord(part)) text += asString(part['text']) ?? '';
      }
    }
    return text;
  }

  function modelInfo(name: string): Record<string, unknown> {
    const embedding = name in EMBEDDING_DIMENSIONS;
    return {
      name: `models/${name}`,
      version: '001',
      displayName: name,
      inputTokenLimit: embedding ? 2048 : 1_048_576,
      outputTokenLimit: embedding ? 1 : 65_536,
      supportedGenerationMethods: embedding
        ? ['embedContent', 'batchEmbedContents', 'countTokens']
        : ['generateContent', 'countTokens'],
    };
  }

  function apiKeyOf(call: IncomingCall): string | undefined {
    const header = call.headers['x-goog-api-key'];
    if (typeof header === 'string' && header.length > 0) return header;
    const query = call.query.get('key');
    return query !== null && query.length > 0 ? query : undefined;
  }

  return {
    route(call: IncomingCall): Routed {
      const { method, path } = call;
      const operation = method === 'POST' ? PATH.exec(path) : null;
      const listing = method === 'GET' ? MODEL_PATH.exec(path) : null;
      if (operation === null && listing === null) {
        return { answer: errorAnswer(404, `Method not found: ${method} ${path}`) };
      }
      const key = apiKeyOf(call);
      if (key === undefined) {
        return {
          answer: errorAnswer(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
          ),
        };
      }
      if (options.apiKey !== undefined && key !== options.apiKey) {
        return {
          answer: errorAnswer(400, 'API key not valid. Please pass a valid API key.', 'INVALID_ARGUMENT', [
            {
              '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
              reason: 'API_KEY_INVALID',
              domain: 'googleapis.com',
              metadata: { service: 'generativelanguage.googleapis.com' },
            },
            {
              '@type': 'type.googleapis.com/google.rpc.LocalizedMessage',
              locale: 'en-US',
              message: 'API key not valid. Please pass a valid API key.',
            },
          ]),
        };
      }
      if (listing !== null) {
        const name = listing[2];
        if (name === undefined) return { answer: json(200, { models: options.models.map(modelInfo) }) };
        const decoded = decodeURIComponent(name);
        if (known.has(decoded)) return { answer: json(200, modelInfo(decoded)) };
        return { answer: errorAnswer(404, `models/${decoded} is not found for API version ${listing[1]}`) };
      }
      const version = operation?.[1] ?? 'v1beta';
      const model = decodeURIComponent(operation?.[2] ?? '');
      const verb = operation?.[3] ?? '';
      if (
        ![
          'generateContent',
          'streamGenerateContent',
          'embedContent',
          'batchEmbedContents',
          'countTokens',
        ].includes(verb)
      ) {
        return { answer: errorAnswer(404, `Method not found: ${verb}`) };
      }
      if (!call.bodyIsJson || !isRecord(call.json)) {
        return {
          answer: errorAnswer(
            400,
            `Invalid JSON payload received. Unexpected token.\n${call.bodyText.slice(0, 40)}\n^`,
          ),
        };
      }
      const body = call.json;
      if (!known.has(model)) {
        return {
          answer: errorAnswer(
            404,
            `models/${model} is not found for API version ${version}, or is not supported for ${verb}. Call ListModels to see the list of available models and their supported methods.`,
          ),
        };
      }
      if (verb === 'embedContent' || verb === 'batchEmbedContents') {
        const requests = verb === 'embedContent' ? [body] : asArray(body['requests']);
        const inputs: string[] = [];
        let dimensions = EMBEDDING_DIMENSIONS[model] ?? 768;
        for (const request of requests) {
          if (!isRecord(request) || !isRecord(request['content'])) {
            return { answer: errorAnswer(400, '* EmbedContentRequest.content: content is not specified\n') };
          }
          inputs.push(textOfParts(request['content']));
          const wanted = request['outputDimensionality'];
          if (typeof wanted === 'number' && wanted > 0) dimensions = wanted;
        }
        if (inputs.length === 0) {
          return {
            answer: errorAnswer(400, '* BatchEmbedContentsRequest.requests: requests is not specified\n'),
          };
        }
        return { call: embedCall(model, inputs, dimensions, verb === 'batchEmbedContents') };
      }
      const contents = asArray(body['contents']);
      if (contents.length === 0) {
        return { answer: errorAnswer(400, '* GenerateContentRequest.contents: contents is not specified\n') };
      }
      if (verb === 'countTokens') {
        let text = '';
        for (const content of contents) text += textOfParts(content);
        const total = estimatePromptTokens(text, contents.length);
        return {
          answer: json(200, {
            totalTokens: total,
            promptTokensDetails: [{ modality: 'TEXT', tokenCount: total }],
          }),
        };
      }
      const stream = verb === 'streamGenerateContent';
      return { call: generateCall(body, model, stream, stream && call.query.get('alt') === 'sse') };
    },
  };
}

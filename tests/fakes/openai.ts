import { randomUUID } from 'node:crypto';
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
import { SSE_CONTENT_TYPE } from './server.js';
import type { FakeErrorBehaviour, FakeFinish, FakeReplyContent } from './types.js';
import {
  argumentsJson,
  asArray,
  asString,
  embeddingVector,
  estimateTokens,
  float32ToBase64,
  isRecord,
  numberField,
  type ResolvedAnswer,
  randomHex,
  randomId,
  resolveAnswer,
  splitInto,
  textOfContent,
} from './util.js';

export const OPENAI_MODELS: readonly string[] = [
  'gpt-5.4',
  'gpt-5.4-mini',
  'gpt-5.4-nano',
  'gpt-5.2',
  'gpt-5.1',
  'gpt-4o',
  'gpt-4o-mini',
  'gpt-4.1',
  'gpt-4.1-mini',
  'gpt-4.1-nano',
  'gpt-5',
  'gpt-5-mini',
  'gpt-5-nano',
  'o3',
  'o4-mini',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'text-embedding-ada-002',
];

/** Azure deployment names served by default (a deployment is named after its model here). */
export const AZURE_DEPLOYMENTS: readonly string[] = [
  'gpt-4o',
  'gpt-4o-mini',
  'gpt-4.1',
  'gpt-4.1-mini',
  'text-embedding-3-small',
  'text-embedding-3-large',
];

/** Data-plane inference api-versions Azure OpenAI accepts (GA and preview). */
export const AZURE_API_VERSIONS: readonly string[] = [
  '2023-05-15',
  '2024-02-01',
  '2024-06-01',
  '2024-10-21',
  '2024-02-15-preview',
  '2024-05-01-preview',
  '2024-08-01-preview',
  '2024-09-01-preview',
  '2024-10-01-preview',
  '2024-12-01-preview',
  '2025-01-01-preview',
  '2025-02-01-preview',
  '2025-03-01-preview',
  '2025-04-01-preview',
];

// Azure answers with the model snapshot behind a deployment, not the deployment name.
const AZURE_MODEL_SNAPSHOTS: Readonly<Record<string, string>> = {
  'gpt-4o': 'gpt-4o-2024-11-20',
  'gpt-4o-mini': 'gpt-4o-mini-2024-07-18',
  'gpt-4.1': 'gpt-4.1-2025-04-14',
  'gpt-4.1-mini': 'gpt-4.1-mini-2025-04-14',
};

const EMBEDDING_DIMENSIONS: Readonly<Record<string, number>> = {
  'text-embedding-3-large': 3072,
  'text-embedding-3-small': 1536,
  'text-embedding-ada-002': 1536,
};

const MODEL_CREATED = 1_715_367_049;
const JSON_TYPE = 'application/json';

const AZURE_ACCESS_DENIED =
  'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.';

const SAFE = { filtered: false, severity: 'safe' } as const;
const AZURE_COMPLETION_FILTERS = {
  hate: SAFE,
  protected_material_code: { filtered: false, detected: false },
  protected_material_text: { filtered: false, detected: false },
  self_harm: SAFE,
  sexual: SAFE,
  violence: SAFE,
};
const AZURE_PROMPT_FILTERS = [
  {
    prompt_index: 0,
    content_filter_results: {
      hate: SAFE,
      jailbreak: { filtered: false, detected: false },
      self_harm: SAFE,
      sexual: SAFE,
      violence: SAFE,
    },
  },
];

type Flavour = 'openai' | 'azure';

export interface OpenAIRouterOptions {
  flavour: Flavour;
  apiKey: string | undefined;
  models: readonly string[];
  apiVersions: readonly string[];
}

interface OpenAIErrorFields {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

function openaiErrorBody(fields: OpenAIErrorFields): string {
  return JSON.stringify({ error: fields });
}

function finishReason(finish: FakeFinish): string {
  switch (finish) {
    case 'stop':
    case 'stop_sequence':
      return 'stop';
    case 'length':
      return 'length';
    case 'tool_calls':
      return 'tool_calls';
    case 'content_filter':
      return 'content_filter';
  }
}

function usageObject(answer: ResolvedAnswer): Record<string, unknown> {
  const { input, output, cached, reasoning } = answer.usage;
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: input + output,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function maskKey(key: string): string {
  if (key.length <= 8) return key;
  return `${key.slice(0, 4)}${'*'.repeat(Math.min(key.length - 8, 40))}${key.slice(-4)}`;
}

function retryAfterSeconds(value: number | string | undefined): number | undefined {
  if (typeof value === 'number') return value;
  if (value === undefined) return undefined;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}

export function createOpenAIRouter(options: OpenAIRouterOptions): ProviderRouter {
  const { flavour } = options;
  const known = new Set(options.models);
  const apiVersions = new Set(options.apiVersions);
  const fingerprint = `fp_${randomHex(10)}`;
  // Static headers are built once; only the request id changes per request.
  const staticHeaders: Headers =
    flavour === 'openai'
      ? {
          'openai-organization': 'user-flowloomfake',
          'openai-processing-ms': '42',
          'openai-project': 'proj_flowloomfake',
          'openai-version': '2020-10-01',
          'x-ratelimit-limit-requests': '10000',
          'x-ratelimit-limit-tokens': '30000000',
          'x-ratelimit-remaining-requests': '9999',
          'x-ratelimit-remaining-tokens': '29999000',
          'x-ratelimit-reset-requests': '6ms',
          'x-ratelimit-reset-tokens': '2ms',
        }
      : {
          'azureml-model-session': 'd001-20250101000000',
          'x-content-type-options': 'nosniff',
          'x-ms-region': 'East US',
          'x-ratelimit-remaining-requests': '999',
          'x-ratelimit-remaining-tokens': '999000',
        };

  const newBaseHeaders = (): Headers => {
    if (flavour === 'openai') return { ...staticHeaders, 'x-request-id': `req_${randomHex(32)}` };
    const id = randomUUID();
    return { ...staticHeaders, 'apim-request-id': id, 'x-request-id': id };
  };

  const json = (status: number, headers: Headers, body: unknown): HttpAnswer => ({
    status,
    headers: { ...headers, 'content-type': JSON_TYPE },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

  const invalidRequest = (
    headers: Headers,
    message: string,
    param: string | null = null,
    code: string | null = null,
  ): HttpAnswer =>
    json(400, headers, openaiErrorBody({ message, type: 'invalid_request_error', param, code }));

  const azureError = (headers: Headers, status: number, code: string, message: string): HttpAnswer =>
    json(status, headers, { error: { code, message } });

  /** The error body and headers a behaviour asks for, shaped like this provider's. */
  const behaviourError = (
    behaviour: FakeErrorBehaviour,
    headers: Headers,
    model: string,
    apiVersion: string,
  ): HttpAnswer => {
    const { status } = behaviour;
    const retryAfter = behaviour.retryAfter;
    const out: Headers = { ...headers, ...behaviour.headers };
    if (retryAfter !== undefined) {
      out['retry-after'] = String(retryAfter);
      const seconds = retryAfterSeconds(retryAfter);
      if (flavour === 'azure' && seconds !== undefined)
        out['retry-after-ms'] = String(Math.round(seconds * 1000));
    }
    if (flavour === 'azure' && [401, 403, 404, 429].includes(status)) {
      const seconds = retryAfterSeconds(retryAfter) ?? 6;
      const defaults: Record<number, [string, string]> = {
        401: ['401', AZURE_ACCESS_DENIED],
        403: ['403', 'Public access is disabled. Please configure private endpoint.'],
        404: [
          'DeploymentNotFound',
          'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
        ],
        429: [
          '429',
          `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${apiVersion} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
        ],
      };
      const [code, message] = defaults[status] ?? [String(status), 'Error'];
      return json(status, out, {
        error: { code: behaviour.code ?? code, message: behaviour.message ?? message },
      });
    }
    let fields: OpenAIErrorFields;
    switch (status) {
      case 400:
        fields = { message: 'Invalid request.', type: 'invalid_request_error', param: null, code: null };
        break;
      case 401:
        fields = {
          message:
            'Incorrect API key provided: sk-proj-****. You can find your API key at https://platform.openai.com/account/api-keys.',
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        };
        break;
      case 403:
        fields = {
          message: 'Country, region, or territory not supported',
          type: 'request_forbidden',
          param: null,
          code: 'unsupported_country_region_territory',
        };
        break;
      case 404:
        fields = {
          message: `The model \`${model}\` does not exist or you do not have access to it.`,
          type: 'invalid_request_error',
          param: null,
          code: 'model_not_found',
        };
        break;
      case 429:
        fields = {
          message: `Rate limit reached for ${model} in organization org-flowloomfake on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in ${retryAfterSeconds(retryAfter) ?? 1}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
          type: 'requests',
          param: null,
          code: 'rate_limit_exceeded',
        };
        break;
      case 503:
        fields = {
          message: 'The engine is currently overloaded, please try again later',
          type: 'server_error',
          param: null,
          code: null,
        };
        break;
      default:
        fields =
          status >= 500
            ? {
                message: 'The server had an error while processing your request. Sorry about that!',
                type: 'server_error',
                param: null,
                code: null,
              }
            : { message: 'Invalid request.', type: 'invalid_request_error', param: null, code: null };
    }
    if (behaviour.message !== undefined) fields.message = behaviour.message;
    if (behaviour.type !== undefined) fields.type = behaviour.type;
    if (behaviour.code !== undefined) fields.code = behaviour.code;
    return json(status, out, openaiErrorBody(fields));
  };

  const streamErrorFrame = (spec: StreamErrorSpec): string => {
    const status = spec.status;
    const fields: OpenAIErrorFields =
      status === 429
        ? { message: 'Rate limit reached.', type: 'requests', param: null, code: 'rate_limit_exceeded' }
        : {
            message: 'The server had an error while processing your request. Sorry about that!',
            type: 'server_error',
            param: null,
            code: null,
          };
    if (spec.message !== undefined) fields.message = spec.message;
    if (spec.type !== undefined) fields.type = spec.type;
    return `data: ${openaiErrorBody(fields)}\n\n`;
  };

  const garbageFrames = (): string =>
    'data: {"id":"chatcmpl-garbage","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tru\n\n' +
    'data: <html><body>upstream proxy error</body></html>\n\n';

  function chatCall(
    body: Record<string, unknown>,
    model: string,
    responseModel: string,
    headers: Headers,
    apiVersion: string,
  ): ModelCall {
    const messages = asArray(body['messages']);
    let lastUserText = '';
    let promptText = '';
    for (const message of messages) {
      if (!isRecord(message)) continue;
      const text = textOfContent(message['content']);
      promptText += text;
      if (message['role'] === 'user') lastUserText = text;
    }
    const stream = body['stream'] === true;
    const streamOptions = isRecord(body['stream_options']) ? body['stream_options'] : {};
    const includeUsage = streamOptions['include_usage'] === true;
    const obfuscate = flavour === 'openai' && streamOptions['include_obfuscation'] !== false;
    const context = {
      provider: flavour,
      model: responseModel,
      lastUserText,
      promptText,
      promptMessages: messages.length,
      maxTokens: numberField(body, 'max_completion_tokens') ?? numberField(body, 'max_tokens'),
    };
    const created = Math.floor(Date.now() / 1000);

    const toolCallIds = (answer: ResolvedAnswer): string[] =>
      answer.toolCalls.map((call) => call.id ?? `call_${randomId(24)}`);

    return {
      stream,
      baseHeaders: () => headers,
      error: (behaviour) => behaviourError(behaviour, headers, model, apiVersion),
      streamErrorFrame,
      garbageFrames,
      faultStatus: 500,
      reply(content: FakeReplyContent): HttpAnswer {
        const answer = resolveAnswer(content, context);
        const ids = toolCallIds(answer);
        const message: Record<string, unknown> = {
          role: 'assistant',
          content: answer.text.length > 0 || answer.toolCalls.length === 0 ? answer.text : null,
          refusal: null,
          annotations: [],
        };
        if (answer.toolCalls.length > 0) {
          message['tool_calls'] = answer.toolCalls.map((call, i) => ({
            id: ids[i],
            type: 'function',
            function: { name: call.name, arguments: argumentsJson(call) },
          }));
        }
        const choice: Record<string, unknown> = {
          index: 0,
          message,
          logprobs: null,
          finish_reason: finishReason(answer.finish),
        };
        const completion: Record<string, unknown> = {
          id: `chatcmpl-${randomId(29)}`,
          object: 'chat.completion',
          created,
          model: answer.model,
          choices: [choice],
          usage: usageObject(answer),
        };
        if (flavour === 'openai') {
          completion['service_tier'] = 'default';
        } else {
          choice['content_filter_results'] = AZURE_COMPLETION_FILTERS;
          completion['prompt_filter_results'] = AZURE_PROMPT_FILTERS;
        }
        completion['system_fingerprint'] = fingerprint;
        return json(200, headers, completion);
      },
      streamPlan(content: FakeReplyContent) {
        const answer = resolveAnswer(content, context);
        const ids = toolCallIds(answer);
        const id = `chatcmpl-${randomId(29)}`;
        const frames: StreamFrame[] = [];
        // Every chunk shares its leading fields; serialise them once per stream.
        const head =
          `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},` +
          `"model":${JSON.stringify(answer.model)},${flavour === 'openai' ? '"service_tier":"default",' : ''}` +
          `"system_fingerprint":"${fingerprint}","choices":`;
        const chunk = (choices: unknown[], usage: unknown, isContent: boolean): void => {
          let data = head + JSON.stringify(choices);
          if (includeUsage) data += `,"usage":${JSON.stringify(usage)}`;
          if (obfuscate) data += `,"obfuscation":"${randomId(4 + (frames.length % 7))}"`;
          frames.push({ data: `${data}}\n\n`, content: isContent });
        };
        const choice = (delta: Record<string, unknown>, finish: string | null, filters: unknown): unknown => {
          const out: Record<string, unknown> = { index: 0, delta, logprobs: null, finish_reason: finish };
          if (flavour === 'azure') out['content_filter_results'] = filters;
          return out;
        };

        if (flavour === 'azure') {
          // Azure opens every stream with the prompt's content-filter verdict and nothing else.
          frames.push({
            data: `data: ${JSON.stringify({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: AZURE_PROMPT_FILTERS })}\n\n`,
            content: false,
          });
        }
        const hasText = answer.text.length > 0 || answer.toolCalls.length === 0;
        const toolHeader = (i: number): Record<string, unknown> => {
          const call = answer.toolCalls[i];
          return {
            index: i,
            id: ids[i],
            type: 'function',
            function: { name: call?.name ?? '', arguments: '' },
          };
        };
        if (hasText) {
          chunk([choice({ role: 'assistant', content: '', refusal: null }, null, {})], null, false);
          for (const piece of answer.chunks) {
            chunk([choice({ content: piece }, null, AZURE_COMPLETION_FILTERS)], null, true);
          }
        }
        answer.toolCalls.forEach((call, i) => {
          if (i === 0 && !hasText) {
            chunk(
              [
                choice(
                  { role: 'assistant', content: null, tool_calls: [toolHeader(0)], refusal: null },
                  null,
                  {},
                ),
              ],
              null,
              false,
            );
          } else {
            chunk([choice({ tool_calls: [toolHeader(i)] }, null, {})], null, false);
          }
          for (const fragment of splitInto(argumentsJson(call), call.fragments ?? 3)) {
            chunk(
              [choice({ tool_calls: [{ index: i, function: { arguments: fragment } }] }, null, {})],
              null,
              true,
            );
          }
        });
        chunk([choice({}, finishReason(answer.finish), {})], null, false);
        if (includeUsage) chunk([], usageObject(answer), false);
        frames.push({ data: 'data: [DONE]\n\n', content: false });
        return {
          headers: { ...headers, 'content-type': SSE_CONTENT_TYPE, 'cache-control': 'no-cache' },
          frames,
        };
      },
    };
  }

  function embeddingsCall(
    body: Record<string, unknown>,
    model: string,
    responseModel: string,
    headers: Headers,
    apiVersion: string,
    inputs: readonly string[],
    tokenCount: number,
  ): ModelCall {
    const base64 = body['encoding_format'] === 'base64';
    const requested = typeof body['dimensions'] === 'number' ? body['dimensions'] : undefined;
    const dimensions =
      requested ?? EMBEDDING_DIMENSIONS[model] ?? EMBEDDING_DIMENSIONS[responseModel] ?? 1536;
    return {
      stream: false,
      baseHeaders: () => headers,
      error: (behaviour) => behaviourError(behaviour, headers, model, apiVersion),
      streamErrorFrame,
      garbageFrames,
      faultStatus: 500,
      streamPlan() {
        throw new Error('embeddings are never streamed');
      },
      reply(): HttpAnswer {
        const data = inputs.map((input, index) => {
          const vector = embeddingVector(input, dimensions);
          return {
            object: 'embedding',
            index,
            embedding: base64 ? float32ToBase64(vector) : Array.from(vector),
          };
        });
        return json(200, headers, {
          object: 'list',
          data,
          model: responseModel,
          usage: { prompt_tokens: tokenCount, total_tokens: tokenCount },
        });
      },
    };
  }

  function embeddingInputs(input: unknown): { inputs: string[]; tokens: number } | undefined {
    if (typeof input === 'string') return { inputs: [input], tokens: Math.max(1, estimateTokens(input)) };
    if (!Array.isArray(input) || input.length === 0) return undefined;
    if (input.every((item) => typeof item === 'number')) {
      return { inputs: [`tokens:${input.join(',')}`], tokens: input.length };
    }
    const inputs: string[] = [];
    let tokens = 0;
    for (const item of input) {
      if (typeof item === 'string') {
        inputs.push(item);
        tokens += Math.max(1, estimateTokens(item));
      } else if (Array.isArray(item) && item.every((token) => typeof token === 'number')) {
        inputs.push(`tokens:${item.join(',')}`);
        tokens += item.length;
      } else {
        return undefined;
      }
    }
    return { inputs, tokens };
  }

  function checkKey(call: IncomingCall, headers: Headers): HttpAnswer | undefined {
    if (flavour === 'azure') {
      const key = call.headers['api-key'];
      if (
        typeof key !== 'string' ||
        key.length === 0 ||
        (options.apiKey !== undefined && key !== options.apiKey)
      ) {
        return azureError(headers, 401, '401', AZURE_ACCESS_DENIED);
      }
      return undefined;
    }
    const authorization = call.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(authorization);
    const key = match?.[1]?.trim();
    if (key === undefined || key.length === 0) {
      return json(
        401,
        headers,
        openaiErrorBody({
          message:
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
          type: 'invalid_request_error',
          param: null,
          code: null,
        }),
      );
    }
    if (options.apiKey !== undefined && key !== options.apiKey) {
      return json(
        401,
        headers,
        openaiErrorBody({
          message: `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        }),
      );
    }
    return undefined;
  }

  function parsedBody(
    call: IncomingCall,
    headers: Headers,
  ): { body: Record<string, unknown> } | { answer: HttpAnswer } {
    if (!call.bodyIsJson) {
      const answer = invalidRequest(
        headers,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
      );
      return { answer };
    }
    if (!isRecord(call.json)) {
      return {
        answer: invalidRequest(
          headers,
          'Invalid type for request body: expected an object.',
          null,
          'invalid_type',
        ),
      };
    }
    return { body: call.json };
  }

  function modelCall(
    operation: 'chat' | 'embeddings',
    call: IncomingCall,
    headers: Headers,
    deployment: string | undefined,
    apiVersion: string,
  ): Routed {
    const parsedRequest = parsedBody(call, headers);
    if ('answer' in parsedRequest) return parsedRequest;
    const request = parsedRequest.body;
    let model: string;
    if (deployment !== undefined) {
      model = deployment;
    } else {
      const requested = asString(request['model']);
      if (requested === undefined || requested.length === 0) {
        return { answer: invalidRequest(headers, 'you must provide a model parameter') };
      }
      model = requested;
    }
    if (operation === 'chat') {
      const messages = request['messages'];
      if (!Array.isArray(messages)) {
        return {
          answer: invalidRequest(
            headers,
            "Missing required parameter: 'messages'.",
            'messages',
            'missing_required_parameter',
          ),
        };
      }
      if (messages.length === 0) {
        return {
          answer: invalidRequest(
            headers,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            'messages',
            'empty_array',
          ),
        };
      }
    }
    if (!known.has(model)) {
      if (flavour === 'azure') {
        return {
          answer: azureError(
            headers,
            404,
            'DeploymentNotFound',
            'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
          ),
        };
      }
      return {
        answer: json(
          404,
          headers,
          openaiErrorBody({
            message: `The model \`${model}\` does not exist or you do not have access to it.`,
            type: 'invalid_request_error',
            param: null,
            code: 'model_not_found',
          }),
        ),
      };
    }
    const responseModel = flavour === 'azure' ? (AZURE_MODEL_SNAPSHOTS[model] ?? model) : model;
    if (operation === 'chat') return { call: chatCall(request, model, responseModel, headers, apiVersion) };
    const parsed = embeddingInputs(request['input']);
    if (parsed === undefined) {
      return {
        answer: invalidRequest(
          headers,
          "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        ),
      };
    }
    return {
      call: embeddingsCall(request, model, responseModel, headers, apiVersion, parsed.inputs, parsed.tokens),
    };
  }

  function modelObject(id: string): Record<string, unknown> {
    return { id, object: 'model', created: MODEL_CREATED, owned_by: 'system' };
  }

  function routeOpenAI(call: IncomingCall, headers: Headers): Routed {
    const { method, path } = call;
    const isChat = method === 'POST' && path === '/v1/chat/completions';
    const isEmbeddings = method === 'POST' && path === '/v1/embeddings';
    const isModels = method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'));
    if (!isChat && !isEmbeddings && !isModels) {
      return {
        answer: json(
          404,
          headers,
          openaiErrorBody({
            message: `Invalid URL (${method} ${path})`,
            type: 'invalid_request_error',
            param: null,
            code: null,
          }),
        ),
      };
    }
    const denied = checkKey(call, headers);
    if (denied !== undefined) return { answer: denied };
    if (isModels) {
      if (path === '/v1/models') {
        return { answer: json(200, headers, { object: 'list', data: options.models.map(modelObject) }) };
      }
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (known.has(id)) return { answer: json(200, headers, modelObject(id)) };
      return {
        answer: json(
          404,
          headers,
          openaiErrorBody({
            message: `The model '${id}' does not exist`,
            type: 'invalid_request_error',
            param: 'model',
            code: 'model_not_found',
          }),
        ),
      };
    }
    return modelCall(isChat ? 'chat' : 'embeddings', call, headers, undefined, '');
  }

  const AZURE_PATH = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/;

  function routeAzure(call: IncomingCall, headers: Headers): Routed {
    const match = call.method === 'POST' ? AZURE_PATH.exec(call.path) : null;
    const apiVersion = call.query.get('api-version');
    // Azure resolves the route with the api-version: without one (or on an unknown path) it is a bare 404.
    if (match === null || apiVersion === null || apiVersion.length === 0) {
      return { answer: azureError(headers, 404, '404', 'Resource not found') };
    }
    if (!apiVersions.has(apiVersion)) {
      return { answer: azureError(headers, 400, 'BadRequest', 'API version not supported') };
    }
    const denied = checkKey(call, headers);
    if (denied !== undefined) return { answer: denied };
    const deployment = decodeURIComponent(match[1] ?? '');
    return modelCall(
      match[2] === 'embeddings' ? 'embeddings' : 'chat',
      call,
      headers,
      deployment,
      apiVersion,
    );
  }

  return {
    route(call: IncomingCall): Routed {
      const headers = newBaseHeaders();
      return flavour === 'openai' ? routeOpenAI(call, headers) : routeAzure(call, headers);
    },
  };
}

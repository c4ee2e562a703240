import { AppError } from '@flowloom/errors';
import type {
  ChatRequest,
  ChatResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  FinishReason,
  JsonObject,
  JsonValue,
  Message,
  StreamEvent,
  ToolCall,
  Usage,
} from '../../canonical.js';
import type { ProviderWire, StreamDecoder } from '../../codec.js';
import { effortForBudget } from '../../reasoning.js';
import type { SseMessage } from '../../sse.js';

export interface OpenAIWireOptions {
  /**
   * OpenAI deprecated `max_tokens` for `max_completion_tokens` (reasoning models reject the old one),
   * while many OpenAI-compatible servers (older vLLM, llama.cpp) only know `max_tokens`.
   */
  maxTokensField: 'max_tokens' | 'max_completion_tokens';
}

function encodeMessage(message: Message): JsonObject {
  switch (message.role) {
    case 'system':
      return { role: 'system', content: message.content };
    case 'user': {
      const only = message.content[0];
      if (message.content.length === 1 && only?.type === 'text') return { role: 'user', content: only.text };
      return {
        role: 'user',
        content: message.content.map(
          (p): JsonObject =>
            p.type === 'text'
              ? { type: 'text', text: p.text }
              : { type: 'image_url', image_url: { url: p.url } },
        ),
      };
    }
    case 'assistant': {
      const out: JsonObject = { role: 'assistant', content: message.content };
      if (message.toolCalls && message.toolCalls.length > 0) {
        out.tool_calls = message.toolCalls.map((c) => ({
          id: c.id,
          type: 'function',
          function: { name: c.name, arguments: c.arguments },
        }));
      }
      return out;
    }
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
  }
}

export function encodeOpenAIChatRequest(
  request: ChatRequest,
  model: string,
  options: OpenAIWireOptions,
): JsonObject {
  // A turn that held only another provider's reasoning has nothing OpenAI can take (no content, no calls).
  const messages = request.messages.filter(
    (m) => m.role !== 'assistant' || m.content !== null || (m.toolCalls?.length ?? 0) > 0,
  );
  const body: JsonObject = { model, messages: messages.map(encodeMessage) };
  if (request.maxTokens !== undefined) body[options.maxTokensField] = request.maxTokens;
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.topP !== undefined) body.top_p = request.topP;
  if (request.stop !== undefined) body.stop = request.stop;
  if (request.seed !== undefined) body.seed = request.seed;
  if (request.user !== undefined) body.user = request.user;
  if (request.tools && request.tools.length > 0) {
    body.tools = request.tools.map((t) => ({
      type: 'function',
      function: {
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        parameters: t.parameters,
      },
    }));
  }
  const choice = request.toolChoice;
  if (choice)
    body.tool_choice =
      choice.type === 'tool' ? { type: 'function', function: { name: choice.name } } : choice.type;
  if (request.parallelToolCalls !== undefined) body.parallel_tool_calls = request.parallelToolCalls;
  const effort = encodeReasoningEffort(request.reasoning, model);
  if (effort !== undefined) body.reasoning_effort = effort;
  const format = request.responseFormat;
  if (format) {
    body.response_format =
      format.type === 'json_schema'
        ? {
            type: 'json_schema',
            json_schema: {
              name: format.name,
              schema: format.schema,
              ...(format.strict !== undefined ? { strict: format.strict } : {}),
            },
          }
        : { type: format.type };
  }
  if (request.stream) {
    body.stream = true;
    // Always ask for usage: a streamed answer must never be metered as zero tokens.
    body.stream_options = { include_usage: true };
  }
  return body;
}

/**
 * An effort goes as is: it is what an OpenAI caller wrote. A budget (from Anthropic or Gemini callers)
 * becomes the smallest level that covers it (reasoning.ts), but only for models that reason (o-series,
 * gpt-5): others reject the parameter, and a hint another format sent by habit must not fail the call.
 * "Disabled" and "adaptive" send nothing: the model's default is the closest OpenAI has.
 */
function encodeReasoningEffort(config: ChatRequest['reasoning'], model: string): string | undefined {
  switch (config?.type) {
    case 'effort':
      return config.effort;
    case 'budget':
      return isOpenAIReasoningModel(model) ? effortForBudget(config.budgetTokens) : undefined;
    default:
      return undefined;
  }
}

/** OpenAI's reasoning models by name; deployments named otherwise (Azure) are not recognised. */
function isOpenAIReasoningModel(model: string): boolean {
  return /^(o[1-9]|gpt-5(?!-chat)|codex)/i.test(model);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

export function decodeOpenAIUsage(value: unknown): Usage {
  if (!isObject(value)) return { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 };
  const details = isObject(value.prompt_tokens_details) ? value.prompt_tokens_details : {};
  const completion = isObject(value.completion_tokens_details) ? value.completion_tokens_details : {};
  return {
    inputTokens: num(value.prompt_tokens),
    outputTokens: num(value.completion_tokens),
    cachedInputTokens: num(details.cached_tokens),
    ...(typeof completion.reasoning_tokens === 'number'
      ? { reasoningTokens: completion.reasoning_tokens }
      : {}),
  };
}

function decodeFinishReason(value: unknown): FinishReason {
  switch (value) {
    case 'length':
      return 'length';
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
    case 'content_filter':
      return 'content_filter';
    default:
      return 'stop';
  }
}

function bad(message: string): AppError {
  return new AppError('upstream_bad_response', `OpenAI-format upstream returned ${message}`);
}

export function decodeOpenAIChatResponse(body: unknown): ChatResponse {
  if (!isObject(body) || !Array.isArray(body.choices)) throw bad('a body without choices');
  const choice: unknown = body.choices[0];
  if (!isObject(choice) || !isObject(choice.message)) throw bad('a choice without a message');
  const message = choice.message;
  const toolCalls: ToolCall[] = [];
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) {
      if (!isObject(call) || !isObject(call.function)) throw bad('a malformed tool call');
      toolCalls.push({
        id: String(call.id ?? ''),
        name: String(call.function.name ?? ''),
        arguments: typeof call.function.arguments === 'string' ? call.function.arguments : '',
      });
    }
  }
  return {
    id: typeof body.id === 'string' ? body.id : '',
    model: typeof body.model === 'string' ? body.model : '',
    created: num(body.created) || Math.floor(Date.now() / 1000),
    content: typeof message.content === 'string' ? message.content : null,
    toolCalls,
    finishReason: decodeFinishReason(choice.finish_reason),
    usage: decodeOpenAIUsage(body.usage),
  };
}

class OpenAIStreamDecoder implements StreamDecoder {
  done = false;
  private started = false;

  push(message: SseMessage): StreamEvent[] {
    if (message.data === '[DONE]') {
      this.done = true;
      return [];
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(message.data);
    } catch {
      throw bad('a stream frame that is not JSON');
    }
    if (!isObject(chunk)) throw bad('a stream frame that is not an object');
    if (isObject(chunk.error)) {
      throw new AppError(
        'upstream_error',
        `Upstream stream failed: ${String(chunk.error.message ?? 'unknown error')}`,
      );
    }
    const events: StreamEvent[] = [];
    const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
    // Azure opens with a chunk of only prompt_filter_results (empty choices, empty id): not the start.
    if (!this.started && choices.length === 0 && !isObject(chunk.usage)) return events;
    if (!this.started) {
      this.started = true;
      events.push({
        type: 'start',
        id: typeof chunk.id === 'string' ? chunk.id : '',
        model: typeof chunk.model === 'string' ? chunk.model : '',
        created: num(chunk.created) || Math.floor(Date.now() / 1000),
      });
    }
    const choice: unknown = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (isObject(choice)) {
      const delta = isObject(choice.delta) ? choice.delta : {};
      if (typeof delta.content === 'string' && delta.content !== '')
        events.push({ type: 'text', delta: delta.content });
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls) {
          if (!isObject(call)) continue;
          const index = num(call.index);
          const fn = isObject(call.function) ? call.function : {};
          if (typeof call.id === 'string' && typeof fn.name === 'string') {
            events.push({ type: 'tool_call_start', index, id: call.id, name: fn.name });
          }
          if (typeof fn.arguments === 'string' && fn.arguments !== '') {
            events.push({ type: 'tool_call_delta', index, argumentsDelta: fn.arguments });
          }
        }
      }
      if (typeof choice.finish_reason === 'string') {
        events.push({ type: 'finish', finishReason: decodeFinishReason(choice.finish_reason) });
      }
    }
    if (isObject(chunk.usage)) events.push({ type: 'usage', usage: decodeOpenAIUsage(chunk.usage) });
    return events;
  }
}

export function decodeOpenAIError(status: number, body: unknown): { message: string; type: string } {
  if (isObject(body) && isObject(body.error)) {
    return {
      message: typeof body.error.message === 'string' ? body.error.message : `HTTP ${status}`,
      type:
        typeof body.error.type === 'string'
          ? body.error.type
          : typeof body.error.code === 'string'
            ? body.error.code
            : 'api_error',
    };
  }
  return {
    message: typeof body === 'string' && body.length > 0 ? body.slice(0, 200) : `HTTP ${status}`,
    type: 'api_error',
  };
}

function decodeEmbeddings(body: unknown): EmbeddingsResponse {
  if (!isObject(body) || !Array.isArray(body.data)) throw bad('an embeddings body without data');
  const data: number[][] = [];
  for (const item of body.data) {
    if (!isObject(item) || !Array.isArray(item.embedding)) throw bad('an embedding that is not an array');
    data[num(item.index)] = item.embedding.map(num);
  }
  const usage = isObject(body.usage) ? body.usage : {};
  return {
    model: typeof body.model === 'string' ? body.model : '',
    data,
    usage: { inputTokens: num(usage.prompt_tokens) },
  };
}

export function createOpenAIWire(options: OpenAIWireOptions): ProviderWire {
  return {
    encodeChatRequest: (request, model) => encodeOpenAIChatRequest(request, model, options),
    decodeChatResponse: decodeOpenAIChatResponse,
    createStreamDecoder: () => new OpenAIStreamDecoder(),
    decodeError: decodeOpenAIError,
    encodeEmbeddingsRequest: (request: EmbeddingsRequest, model: string) => {
      const body: Record<string, JsonValue> = { model, input: request.input, encoding_format: 'float' };
      if (request.dimensions !== undefined) body.dimensions = request.dimensions;
      if (request.user !== undefined) body.user = request.user;
      return body;
    },
    decodeEmbeddingsResponse: decodeEmbeddings,
  };
}

import type {
  ChatRequest,
  ChatResponse,
  ContentPart,
  EmbeddingsRequest,
  EmbeddingsResponse,
  FinishReason,
  JsonObject,
  Message,
  StreamEvent,
  ToolChoice,
  Usage,
} from '../../canonical.js';
import type { CallerFormat, StreamEncoder } from '../../codec.js';
import { sseFrame } from '../../sse.js';
import { parseOrThrow } from '../../validation.js';
import { type OpenAIChatRequest, openAIChatRequest, openAIEmbeddingsRequest } from './schema.js';

type TextContent = string | Array<{ type: 'text'; text: string }>;

function joinText(content: TextContent): string {
  return typeof content === 'string' ? content : content.map((p) => p.text).join('');
}

function decodeMessage(message: OpenAIChatRequest['messages'][number]): Message {
  switch (message.role) {
    case 'system':
    case 'developer':
      return { role: 'system', content: joinText(message.content) };
    case 'user': {
      const content: ContentPart[] =
        typeof message.content === 'string'
          ? [{ type: 'text', text: message.content }]
          : message.content.map((part) =>
              part.type === 'text'
                ? { type: 'text', text: part.text }
                : { type: 'image', url: part.image_url.url },
            );
      return { role: 'user', content };
    }
    case 'assistant': {
      const toolCalls = message.tool_calls?.map((c) => ({
        id: c.id,
        name: c.function.name,
        arguments: c.function.arguments,
      }));
      return {
        role: 'assistant',
        content: message.content == null ? null : joinText(message.content),
        ...(toolCalls && toolCalls.length > 0 ? { toolCalls } : {}),
      };
    }
    case 'tool':
      return { role: 'tool', toolCallId: message.tool_call_id, content: joinText(message.content) };
  }
}

function decodeToolChoice(choice: OpenAIChatRequest['tool_choice']): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  if (typeof choice === 'string') return { type: choice };
  return { type: 'tool', name: choice.function.name };
}

export function decodeOpenAIChatRequest(body: unknown): ChatRequest {
  const r = parseOrThrow(openAIChatRequest, body, 'chat completion request');
  const request: ChatRequest = {
    model: r.model,
    messages: r.messages.map(decodeMessage),
    stream: r.stream === true,
  };
  const maxTokens = r.max_completion_tokens ?? r.max_tokens;
  if (maxTokens != null) request.maxTokens = maxTokens;
  if (r.temperature != null) request.temperature = r.temperature;
  if (r.top_p != null) request.topP = r.top_p;
  if (r.stop != null) request.stop = typeof r.stop === 'string' ? [r.stop] : r.stop;
  if (r.tools)
    request.tools = r.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description !== undefined ? { description: t.function.description } : {}),
      parameters: (t.function.parameters as JsonObject | undefined) ?? { type: 'object', properties: {} },
    }));
  const toolChoice = decodeToolChoice(r.tool_choice);
  if (toolChoice) request.toolChoice = toolChoice;
  if (r.parallel_tool_calls !== undefined) request.parallelToolCalls = r.parallel_tool_calls;
  if (r.response_format) {
    const f = r.response_format;
    request.responseFormat =
      f.type === 'json_schema'
        ? {
            type: 'json_schema',
            name: f.json_schema.name,
            schema: (f.json_schema.schema as JsonObject | undefined) ?? {},
            ...(f.json_schema.strict != null ? { strict: f.json_schema.strict } : {}),
          }
        : { type: f.type };
  }
  if (r.stream_options?.include_usage) request.includeUsage = true;
  if (r.user !== undefined) request.user = r.user;
  if (r.seed != null) request.seed = r.seed;
  if (r.reasoning_effort != null) request.reasoning = { type: 'effort', effort: r.reasoning_effort };
  return request;
}

/**
 * `cached_tokens` counts cache reads only (what OpenAI means by cached); Anthropic cache writes are plain
 * prompt tokens here. `reasoning_tokens` appears only when the provider reported it, since 0 would
 * wrongly say that a thinking model did not think.
 */
export function encodeOpenAIUsage(usage: Usage): JsonObject {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedInputTokens },
    ...(usage.reasoningTokens !== undefined
      ? { completion_tokens_details: { reasoning_tokens: usage.reasoningTokens } }
      : {}),
  };
}

function finishReasonOf(reason: FinishReason): string {
  return reason === 'error' ? 'stop' : reason;
}

export function encodeOpenAIChatResponse(response: ChatResponse, model: string): JsonObject {
  const message: JsonObject = { role: 'assistant', content: response.content, refusal: null };
  if (response.toolCalls.length > 0) {
    message.tool_calls = response.toolCalls.map((c) => ({
      id: c.id,
      type: 'function',
      function: { name: c.name, arguments: c.arguments },
    }));
  }
  return {
    id: response.id,
    object: 'chat.completion',
    created: response.created,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReasonOf(response.finishReason) }],
    usage: encodeOpenAIUsage(response.usage),
  };
}

/** Emits `chat.completion.chunk` frames as OpenAI does, ending with an optional usage chunk and `[DONE]`. */
class OpenAIStreamEncoder implements StreamEncoder {
  private id = '';
  private created = Math.floor(Date.now() / 1000);

  constructor(
    private readonly model: string,
    private readonly includeUsage: boolean,
  ) {}

  private chunk(delta: JsonObject, finishReason: string | null): string {
    const body: JsonObject = {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    };
    if (this.includeUsage) body.usage = null;
    return sseFrame(JSON.stringify(body));
  }

  encode(event: StreamEvent): string {
    switch (event.type) {
      case 'start':
        this.id = event.id;
        this.created = event.created;
        return this.chunk({ role: 'assistant', content: '', refusal: null }, null);
      case 'text':
        return event.delta === '' ? '' : this.chunk({ content: event.delta }, null);
      case 'tool_call_start':
        return this.chunk(
          {
            tool_calls: [
              {
                index: event.index,
                id: event.id,
                type: 'function',
                function: { name: event.name, arguments: '' },
              },
            ],
          },
          null,
        );
      case 'tool_call_delta':
        return this.chunk(
          { tool_calls: [{ index: event.index, function: { arguments: event.argumentsDelta } }] },
          null,
        );
      case 'finish':
        return this.chunk({}, finishReasonOf(event.finishReason));
      case 'usage':
      // Chat Completions documents no field for reasoning text (OpenAI's own models never return it),
      // so another provider's thinking is not shown to OpenAI-format callers; its token count is, in usage.
      case 'reasoning':
      case 'reasoning_signature':
      case 'reasoning_redacted':
        return '';
    }
  }

  end(usage: Usage): string {
    let out = '';
    if (this.includeUsage) {
      out += sseFrame(
        JSON.stringify({
          id: this.id,
          object: 'chat.completion.chunk',
          created: this.created,
          model: this.model,
          choices: [],
          usage: encodeOpenAIUsage(usage),
        }),
      );
    }
    return `${out}data: [DONE]\n\n`;
  }

  error(message: string, type: string): string {
    return sseFrame(JSON.stringify({ error: { message, type, param: null, code: null } }));
  }
}

export const openAICaller: CallerFormat = {
  name: 'openai',
  decodeChatRequest: decodeOpenAIChatRequest,
  encodeChatResponse: encodeOpenAIChatResponse,
  createStreamEncoder: (model, options) => new OpenAIStreamEncoder(model, options.includeUsage),
};

export function decodeOpenAIEmbeddingsRequest(body: unknown): EmbeddingsRequest {
  const r = parseOrThrow(openAIEmbeddingsRequest, body, 'embeddings request');
  return {
    model: r.model,
    input: typeof r.input === 'string' ? [r.input] : r.input,
    ...(r.dimensions !== undefined ? { dimensions: r.dimensions } : {}),
    ...(r.encoding_format !== undefined ? { encodingFormat: r.encoding_format } : {}),
    ...(r.user !== undefined ? { user: r.user } : {}),
  };
}

function toBase64(vector: number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString('base64');
}

export function encodeOpenAIEmbeddingsResponse(
  response: EmbeddingsResponse,
  model: string,
  format: 'float' | 'base64' = 'float',
): JsonObject {
  return {
    object: 'list',
    data: response.data.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: format === 'base64' ? toBase64(vector) : vector,
    })),
    model,
    usage: { prompt_tokens: response.usage.inputTokens, total_tokens: response.usage.inputTokens },
  };
}

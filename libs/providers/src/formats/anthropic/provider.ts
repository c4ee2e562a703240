/**
 * Anthropic Messages API as an upstream: the request FlowLoom sends to `POST /v1/messages`, and the
 * `message` object, SSE stream and error bodies it gets back.
 */
import { AppError } from '@flowloom/errors';
import { z } from 'zod';
import type {
  CacheControl,
  ChatRequest,
  ChatResponse,
  ContentPart,
  ReasoningBlock,
  StreamEvent,
  ToolCall,
  ToolChoice,
  Usage,
} from '../../canonical.js';
import type { ProviderWire, StreamDecoder } from '../../codec.js';
import { ANTHROPIC_MIN_THINKING_BUDGET, reasoningBudget, reasoningDisabled } from '../../reasoning.js';
import type { SseMessage } from '../../sse.js';
import { argumentsToObject, invalidField, jsonValue, parseDataUrl, toJsonObject } from '../../validation.js';
import {
  ANTHROPIC_IMAGE_TYPES,
  type AnthropicImageBlock,
  type AnthropicRequest,
  type AnthropicRequestBlock,
  type AnthropicTextBlock,
  type AnthropicThinkingConfig,
  type AnthropicToolChoice,
  type AnthropicWireMessage,
  fromAnthropicStopReason,
  fromAnthropicUsage,
  toAnthropicReasoningBlock,
} from './wire.js';

/** Used when the caller set no limit (OpenAI and Gemini make it optional; Anthropic requires it). */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

/**
 * `json_object` has no Anthropic equivalent without a schema, so it becomes an instruction appended to
 * the system prompt; `json_schema` maps to the native structured output (`output_config.format`).
 */
export const JSON_OBJECT_INSTRUCTION =
  'Respond with a single valid JSON object only, with no text before or after it.';

export function encodeAnthropicRequest(request: ChatRequest, model: string): AnthropicRequest {
  const system: AnthropicTextBlock[] = [];
  const messages: AnthropicWireMessage[] = [];
  // Consecutive same-role turns are merged, so tool results that follow one assistant turn become one
  // user message of tool_result blocks, as Anthropic expects.
  const append = (role: 'user' | 'assistant', blocks: AnthropicRequestBlock[]): void => {
    if (blocks.length === 0) return;
    const last = messages.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };

  request.messages.forEach((message, index) => {
    switch (message.role) {
      case 'system':
        // Anthropic has one top-level system prompt; system messages anywhere in the history join it.
        if (message.content !== '')
          system.push({ type: 'text', text: message.content, ...cacheControl(message.cacheControl) });
        break;
      case 'user':
        append(
          'user',
          message.content.flatMap((part, partIndex) =>
            encodePart(part, `messages.${index}.content.${partIndex}`),
          ),
        );
        break;
      case 'assistant': {
        // Thinking blocks go back first and untouched: Anthropic checks their signatures.
        const blocks: AnthropicRequestBlock[] = (message.reasoning ?? []).map(toAnthropicReasoningBlock);
        if (message.content)
          blocks.push({ type: 'text', text: message.content, ...cacheControl(message.cacheControl) });
        for (const call of message.toolCalls ?? []) {
          blocks.push({
            type: 'tool_use',
            id: call.id,
            name: call.name,
            input: argumentsToObject(call.arguments),
            ...cacheControl(call.cacheControl),
          });
        }
        append('assistant', blocks);
        break;
      }
      case 'tool':
        append('user', [
          {
            type: 'tool_result',
            tool_use_id: message.toolCallId,
            content: message.content,
            ...(message.isError === true ? { is_error: true } : {}),
            ...cacheControl(message.cacheControl),
          },
        ]);
        break;
    }
  });
  trimPrefill(messages);

  if (request.responseFormat?.type === 'json_object')
    system.push({ type: 'text', text: JSON_OBJECT_INSTRUCTION });
  const tools = request.tools ?? [];
  const toolChoice =
    tools.length > 0 ? encodeToolChoice(request.toolChoice, request.parallelToolCalls) : undefined;
  const first = system[0];
  const thinking = encodeThinking(request, model);
  const maxTokens =
    request.maxTokens ??
    // Thinking counts towards max_tokens: the default answer length comes on top of the budget.
    (thinking?.type === 'enabled' ? thinking.budget_tokens : 0) + ANTHROPIC_DEFAULT_MAX_TOKENS;

  return {
    model,
    max_tokens: maxTokens,
    messages,
    // A single plain system text goes as a string; blocks keep their cache breakpoints.
    ...(first ? { system: system.length === 1 && !first.cache_control ? first.text : system } : {}),
    // Anthropic's range is 0..1 where OpenAI's is 0..2; out-of-range values are clamped, not rejected.
    ...(request.temperature !== undefined
      ? { temperature: Math.min(1, Math.max(0, request.temperature)) }
      : {}),
    ...(request.topP !== undefined ? { top_p: request.topP } : {}),
    ...(request.stop && request.stop.length > 0 ? { stop_sequences: request.stop } : {}),
    ...(request.stream ? { stream: true } : {}),
    ...(tools.length > 0
      ? {
          tools: tools.map((tool) => ({
            name: tool.name,
            ...(tool.description !== undefined ? { description: tool.description } : {}),
            // Anthropic only takes object schemas; a schema without a type (OpenAI allows `{}`) is one.
            input_schema: { ...tool.parameters, type: 'object' as const },
            ...cacheControl(tool.cacheControl),
          })),
        }
      : {}),
    ...(toolChoice ? { tool_choice: toolChoice } : {}),
    ...(request.user ? { metadata: { user_id: request.user } } : {}),
    ...(request.responseFormat?.type === 'json_schema'
      ? { output_config: { format: { type: 'json_schema', schema: request.responseFormat.schema } } }
      : {}),
    ...(thinking ? { thinking } : {}),
    ...cacheControl(request.cacheControl),
  };
}

function cacheControl(marker: CacheControl | undefined): { cache_control?: CacheControl } {
  return marker ? { cache_control: marker } : {};
}

/**
 * Canonical reasoning → `thinking`. A budget from an Anthropic caller was already checked against
 * Anthropic's limits; one from another format (an OpenAI effort, a Gemini budget) is fitted to them:
 * raised to the 1,024 minimum and kept below the caller's token limit, which in all three formats
 * includes thinking. When the limit leaves no room for the minimum, the answer is asked for without
 * thinking rather than failing a request that was valid in the caller's own format.
 */
function encodeThinking(request: ChatRequest, model: string): AnthropicThinkingConfig | undefined {
  const config = request.reasoning;
  // Claude models before 3.7 do not think and reject the parameter; the hint is dropped instead.
  if (!config || /^claude-(instant|2|3-(haiku|sonnet|opus)|3-5)/.test(model)) return undefined;
  const display = config.display ? { display: config.display } : {};
  if (reasoningDisabled(config)) return { type: 'disabled' };
  if (config.type === 'adaptive') return { type: 'adaptive', ...display };
  const wanted = reasoningBudget(config);
  if (wanted === undefined) return undefined;
  let budget = Math.max(ANTHROPIC_MIN_THINKING_BUDGET, wanted);
  if (request.maxTokens !== undefined) budget = Math.min(budget, request.maxTokens - 1);
  if (budget < ANTHROPIC_MIN_THINKING_BUDGET) return undefined;
  return { type: 'enabled', budget_tokens: budget, ...display };
}

function encodePart(part: ContentPart, param: string): AnthropicRequestBlock[] {
  // Anthropic rejects empty text blocks, which OpenAI callers may send.
  if (part.type === 'text')
    return part.text === '' ? [] : [{ type: 'text', text: part.text, ...cacheControl(part.cacheControl) }];
  return [{ ...encodeImage(part.url, param), ...cacheControl(part.cacheControl) }];
}

function encodeImage(url: string, param: string): AnthropicImageBlock {
  if (url.startsWith('data:')) {
    const data = parseDataUrl(url);
    if (!data) throw invalidField(param, 'image data URLs must be base64 encoded');
    const mediaType = ANTHROPIC_IMAGE_TYPES.find((type) => type === data.mediaType);
    if (!mediaType) {
      throw invalidField(
        param,
        `Anthropic accepts ${ANTHROPIC_IMAGE_TYPES.join(', ')} images, not ${data.mediaType}`,
      );
    }
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: data.data } };
  }
  return { type: 'image', source: { type: 'url', url } };
}

/** The API rejects a final (prefill) assistant turn that ends in whitespace. */
function trimPrefill(messages: AnthropicWireMessage[]): void {
  const last = messages.at(-1);
  const block = last?.content.at(-1);
  if (last?.role === 'assistant' && block?.type === 'text') {
    block.text = block.text.trimEnd();
    if (block.text === '') last.content.pop();
    if (last.content.length === 0) messages.pop();
  }
}

function encodeToolChoice(
  choice: ToolChoice | undefined,
  parallelToolCalls: boolean | undefined,
): AnthropicToolChoice | undefined {
  const disable = parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  switch (choice?.type) {
    case undefined:
      return parallelToolCalls === false ? { type: 'auto', ...disable } : undefined;
    case 'auto':
      return { type: 'auto', ...disable };
    case 'required':
      return { type: 'any', ...disable };
    case 'tool':
      return { type: 'tool', name: choice.name, ...disable };
    case 'none':
      return { type: 'none' };
  }
}

const outputDetailsSchema = z
  .object({ thinking_tokens: z.number().nullable().optional() })
  .nullable()
  .optional();

// The split of cache writes by TTL: one-hour writes cost more than five-minute ones.
const cacheCreationSchema = z
  .object({ ephemeral_1h_input_tokens: z.number().nullable().optional() })
  .nullable()
  .optional();

const usageSchema = z.object({
  input_tokens: z.number(),
  output_tokens: z.number(),
  cache_creation_input_tokens: z.number().nullable().optional(),
  cache_read_input_tokens: z.number().nullable().optional(),
  output_tokens_details: outputDetailsSchema,
  cache_creation: cacheCreationSchema,
});

const contentBlockSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: jsonValue.optional() }),
  z.object({ type: z.literal('thinking'), thinking: z.string(), signature: z.string() }),
  z.object({ type: z.literal('redacted_thinking'), data: z.string() }),
]);

const messageSchema = z.object({
  id: z.string(),
  model: z.string(),
  // Server tool and future block types are skipped, not rejected.
  content: z.array(z.object({ type: z.string() }).loose()),
  stop_reason: z.string().nullable(),
  stop_sequence: z.string().nullable().optional(),
  usage: usageSchema,
});

export function decodeAnthropicResponse(body: unknown): ChatResponse {
  const parsed = messageSchema.safeParse(body);
  if (!parsed.success) throw badResponse('message', parsed.error);
  const message = parsed.data;
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  const reasoning: ReasoningBlock[] = [];
  for (const raw of message.content) {
    const block = contentBlockSchema.safeParse(raw);
    if (!block.success) continue;
    switch (block.data.type) {
      case 'text':
        texts.push(block.data.text);
        break;
      case 'tool_use':
        toolCalls.push({
          id: block.data.id,
          name: block.data.name,
          arguments: JSON.stringify(block.data.input ?? {}),
        });
        break;
      case 'thinking':
        reasoning.push({ type: 'thinking', text: block.data.thinking, signature: block.data.signature });
        break;
      case 'redacted_thinking':
        reasoning.push({ type: 'redacted', data: block.data.data });
        break;
    }
  }
  return {
    id: message.id,
    model: message.model,
    created: Math.floor(Date.now() / 1000),
    content: texts.length > 0 ? texts.join('') : null,
    toolCalls,
    ...(reasoning.length > 0 ? { reasoning } : {}),
    finishReason: fromAnthropicStopReason(message.stop_reason),
    stopSequence: message.stop_sequence ?? null,
    usage: fromAnthropicUsage(message.usage),
  };
}

function badResponse(what: string, error: z.ZodError): AppError {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  return new AppError('upstream_bad_response', `Anthropic sent a malformed ${what}${where}.`);
}

const streamEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('message_start'),
    message: z.object({ id: z.string(), model: z.string(), usage: usageSchema }),
  }),
  z.object({
    type: z.literal('content_block_start'),
    index: z.number(),
    content_block: z.object({
      type: z.string(),
      id: z.string().optional(),
      name: z.string().optional(),
      text: z.string().optional(),
      thinking: z.string().optional(),
      data: z.string().optional(),
    }),
  }),
  z.object({
    type: z.literal('content_block_delta'),
    index: z.number(),
    delta: z.object({
      type: z.string(),
      text: z.string().optional(),
      partial_json: z.string().optional(),
      thinking: z.string().optional(),
      signature: z.string().optional(),
    }),
  }),
  z.object({ type: z.literal('content_block_stop'), index: z.number() }),
  z.object({
    type: z.literal('message_delta'),
    delta: z.object({
      stop_reason: z.string().nullable().optional(),
      stop_sequence: z.string().nullable().optional(),
    }),
    usage: z.object({
      output_tokens: z.number(),
      input_tokens: z.number().nullable().optional(),
      cache_creation_input_tokens: z.number().nullable().optional(),
      cache_read_input_tokens: z.number().nullable().optional(),
      output_tokens_details: outputDetailsSchema,
      cache_creation: cacheCreationSchema,
    }),
  }),
  z.object({ type: z.literal('message_stop') }),
  z.object({ type: z.literal('ping') }),
  z.object({ type: z.literal('error'), error: z.object({ type: z.string(), message: z.string() }) }),
]);

/**
 * Anthropic SSE → canonical events. Block indexes count text and tool_use blocks together; canonical
 * tool indexes count tool calls only, so a map translates one into the other.
 */
export class AnthropicStreamDecoder implements StreamDecoder {
  private finished = false;
  private readonly toolIndexByBlock = new Map<number, number>();
  private toolCount = 0;
  // Raw Anthropic counters: message_delta may restate any of them as cumulative totals.
  private readonly counters: {
    input: number;
    output: number;
    cacheRead: number;
    cacheWrite: number;
    cacheWrite1h?: number;
    thinking?: number;
  } = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };

  get done(): boolean {
    return this.finished;
  }

  push(message: SseMessage): StreamEvent[] {
    if (message.data === '') return [];
    let data: unknown;
    try {
      data = JSON.parse(message.data);
    } catch {
      throw new AppError('upstream_bad_response', 'Anthropic sent an SSE event that is not JSON.');
    }
    const type = typeof data === 'object' && data !== null && 'type' in data ? data.type : message.event;
    const known = streamEventSchema.safeParse(data);
    if (!known.success) {
      const recognized = streamEventSchema.options.some((option) => option.shape.type.value === type);
      // New event types are ignored, as the SDKs do; a known type with a wrong shape is an upstream fault.
      if (recognized) throw badResponse(`${String(type)} event`, known.error);
      return [];
    }
    const event = known.data;
    switch (event.type) {
      case 'message_start': {
        const usage = event.message.usage;
        this.counters.input = usage.input_tokens;
        this.counters.output = usage.output_tokens;
        this.counters.cacheRead = usage.cache_read_input_tokens ?? 0;
        this.counters.cacheWrite = usage.cache_creation_input_tokens ?? 0;
        this.readDetails(usage);
        return [
          {
            type: 'start',
            id: event.message.id,
            model: event.message.model,
            created: Math.floor(Date.now() / 1000),
          },
          { type: 'usage', usage: this.usage() },
        ];
      }
      case 'content_block_start': {
        const block = event.content_block;
        if (block.type === 'tool_use') {
          const index = this.toolCount++;
          this.toolIndexByBlock.set(event.index, index);
          return [{ type: 'tool_call_start', index, id: block.id ?? '', name: block.name ?? '' }];
        }
        if (block.type === 'text' && block.text) return [{ type: 'text', delta: block.text }];
        // An empty delta still marks where a thinking block begins, so block boundaries survive.
        if (block.type === 'thinking') return [{ type: 'reasoning', delta: block.thinking ?? '' }];
        if (block.type === 'redacted_thinking')
          return [{ type: 'reasoning_redacted', data: block.data ?? '' }];
        return [];
      }
      case 'content_block_delta': {
        const delta = event.delta;
        if (delta.type === 'text_delta' && delta.text) return [{ type: 'text', delta: delta.text }];
        if (delta.type === 'input_json_delta' && delta.partial_json) {
          const index = this.toolIndexByBlock.get(event.index);
          if (index === undefined) return [];
          return [{ type: 'tool_call_delta', index, argumentsDelta: delta.partial_json }];
        }
        if (delta.type === 'thinking_delta' && delta.thinking)
          return [{ type: 'reasoning', delta: delta.thinking }];
        if (delta.type === 'signature_delta' && delta.signature !== undefined) {
          return [{ type: 'reasoning_signature', signature: delta.signature }];
        }
        // citations_delta and newer kinds: nothing canonical to say.
        return [];
      }
      case 'message_delta': {
        const usage = event.usage;
        this.counters.output = usage.output_tokens;
        if (usage.input_tokens != null) this.counters.input = usage.input_tokens;
        if (usage.cache_read_input_tokens != null) this.counters.cacheRead = usage.cache_read_input_tokens;
        if (usage.cache_creation_input_tokens != null)
          this.counters.cacheWrite = usage.cache_creation_input_tokens;
        this.readDetails(usage);
        const events: StreamEvent[] = [];
        if (event.delta.stop_reason != null) {
          events.push({
            type: 'finish',
            finishReason: fromAnthropicStopReason(event.delta.stop_reason),
            stopSequence: event.delta.stop_sequence ?? null,
          });
        }
        events.push({ type: 'usage', usage: this.usage() });
        return events;
      }
      case 'message_stop':
        this.finished = true;
        return [];
      case 'error':
        throw new AppError(
          'upstream_error',
          `Anthropic stream error (${event.error.type}): ${event.error.message}`,
          {
            details: { upstreamType: event.error.type },
          },
        );
      case 'content_block_stop':
      case 'ping':
        return [];
    }
  }

  private readDetails(usage: {
    output_tokens_details?: z.infer<typeof outputDetailsSchema>;
    cache_creation?: z.infer<typeof cacheCreationSchema>;
  }): void {
    const thinking = usage.output_tokens_details?.thinking_tokens;
    if (typeof thinking === 'number') this.counters.thinking = thinking;
    const hourWrites = usage.cache_creation?.ephemeral_1h_input_tokens;
    if (typeof hourWrites === 'number') this.counters.cacheWrite1h = hourWrites;
  }

  private usage(): Usage {
    const { thinking, cacheWrite1h } = this.counters;
    return fromAnthropicUsage({
      input_tokens: this.counters.input,
      output_tokens: this.counters.output,
      cache_read_input_tokens: this.counters.cacheRead,
      cache_creation_input_tokens: this.counters.cacheWrite,
      ...(thinking !== undefined ? { output_tokens_details: { thinking_tokens: thinking } } : {}),
      ...(cacheWrite1h !== undefined ? { cache_creation: { ephemeral_1h_input_tokens: cacheWrite1h } } : {}),
    });
  }
}

const errorBodySchema = z.object({
  type: z.literal('error'),
  error: z.object({ type: z.string(), message: z.string() }),
});

const TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** Reads `{type:"error",error:{type,message}}`; anything else (an HTML page from a proxy) gets a type by status. */
export function decodeAnthropicError(status: number, body: unknown): { message: string; type: string } {
  const parsed = errorBodySchema.safeParse(body);
  if (parsed.success) return { message: parsed.data.error.message, type: parsed.data.error.type };
  const type = TYPE_BY_STATUS[status] ?? 'api_error';
  const text = typeof body === 'string' ? body.trim().slice(0, 500) : '';
  return { message: text === '' ? `Anthropic returned HTTP ${status}.` : text, type };
}

export const anthropicProvider: ProviderWire = {
  encodeChatRequest: (request, model) => toJsonObject(encodeAnthropicRequest(request, model)),
  decodeChatResponse: decodeAnthropicResponse,
  createStreamDecoder: () => new AnthropicStreamDecoder(),
  decodeError: decodeAnthropicError,
};

/**
 * Anthropic Messages API as a caller format: what `@anthropic-ai/sdk` and Claude clients send to
 * `POST /v1/messages`, and the `message` objects and SSE events they expect back.
 */
import { AppError } from '@flowloom/errors';
import type {
  Cacheable,
  CacheControl,
  ChatRequest,
  ChatResponse,
  ContentPart,
  JsonObject,
  Message,
  ReasoningBlock,
  ReasoningConfig,
  ResponseFormat,
  StreamEvent,
  ToolCall,
  ToolChoice,
  ToolDefinition,
  Usage,
} from '../../canonical.js';
import { mergeUsage } from '../../canonical.js';
import type { CallerFormat, CallerHeaders, StreamEncoder } from '../../codec.js';
import { sseFrame } from '../../sse.js';
import { argumentsToObject, invalidField, parseRequest, toJsonObject } from '../../validation.js';
import { type AnthropicRequestBody, anthropicRequestSchema } from './request-schema.js';
import {
  type AnthropicContentBlockStartEvent,
  type AnthropicMessage,
  type AnthropicResponseBlock,
  type AnthropicStreamEvent,
  toAnthropicMessageId,
  toAnthropicReasoningBlock,
  toAnthropicStopReason,
  toAnthropicUsage,
} from './wire.js';

type RequestMessage = AnthropicRequestBody['messages'][number];
type UserBlocks = Exclude<Extract<RequestMessage, { role: 'user' }>['content'], string>;
type AssistantBlocks = Exclude<Extract<RequestMessage, { role: 'assistant' }>['content'], string>;

/** `{ cacheControl }` when the block carries a breakpoint, for spreading into canonical objects. */
export function cached(marker: CacheControl | null | undefined): Cacheable {
  return marker ? { cacheControl: marker } : {};
}

/** A beta name as Anthropic spells them (`prompt-caching-2024-07-31`, `context-1m-2025-08-07`). */
const BETA_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/i;
const MAX_BETAS = 32;

/**
 * The `anthropic-beta` header: comma-separated feature names (a repeated header counts as one list).
 * Anything else is refused here rather than passed on to a provider.
 */
export function decodeAnthropicBetas(header: string | string[] | undefined): string[] | undefined {
  if (header === undefined) return undefined;
  const names = (Array.isArray(header) ? header : [header])
    .flatMap((value) => value.split(','))
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const bad = names.find((name) => !BETA_NAME.test(name));
  if (bad !== undefined || names.length > MAX_BETAS) {
    throw new AppError(
      'invalid_request',
      `anthropic-beta: expected up to ${MAX_BETAS} comma-separated beta names such as "context-1m-2025-08-07"${bad === undefined ? '' : `, not ${JSON.stringify(bad.slice(0, 100))}`}`,
      { param: 'anthropic-beta' },
    );
  }
  return names.length > 0 ? [...new Set(names)] : undefined;
}

export function decodeAnthropicRequest(body: unknown, headers?: CallerHeaders): ChatRequest {
  const betas = decodeAnthropicBetas(headers?.['anthropic-beta']);
  const request = parseRequest(anthropicRequestSchema, body);
  checkToolChoice(request);
  const reasoning = decodeThinking(request);

  const messages: Message[] = [];
  if (typeof request.system === 'string') {
    if (request.system !== '') messages.push({ role: 'system', content: request.system });
  } else if (request.system) {
    for (const block of request.system) {
      messages.push({ role: 'system', content: block.text, ...cached(block.cache_control) });
    }
  }
  request.messages.forEach((message, index) => {
    messages.push(...decodeMessage(message, index));
  });

  const disableParallel =
    request.tool_choice && 'disable_parallel_tool_use' in request.tool_choice
      ? request.tool_choice.disable_parallel_tool_use
      : undefined;
  const format = request.output_config?.format;
  const responseFormat: ResponseFormat | undefined = format
    ? { type: 'json_schema', name: 'response', schema: format.schema }
    : undefined;
  const stream = request.stream ?? false;
  const userId = request.metadata?.user_id;

  return {
    model: request.model,
    messages,
    maxTokens: request.max_tokens,
    stream,
    // Anthropic streams always report usage, so the upstream must be asked for it too.
    ...(stream ? { includeUsage: true } : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.top_p !== undefined ? { topP: request.top_p } : {}),
    ...(request.stop_sequences && request.stop_sequences.length > 0 ? { stop: request.stop_sequences } : {}),
    ...(request.tools && request.tools.length > 0 ? { tools: request.tools.map(decodeTool) } : {}),
    ...(request.tool_choice ? { toolChoice: decodeToolChoice(request.tool_choice) } : {}),
    ...(disableParallel === true ? { parallelToolCalls: false } : {}),
    ...(responseFormat ? { responseFormat } : {}),
    ...(typeof userId === 'string' && userId !== '' ? { user: userId } : {}),
    ...(reasoning ? { reasoning } : {}),
    ...cached(request.cache_control),
    ...(betas ? { anthropicBetas: betas } : {}),
  };
}

/** Anthropic's own limits are checked here so the caller gets its error before any upstream call. */
function decodeThinking(request: AnthropicRequestBody): ReasoningConfig | undefined {
  const thinking = request.thinking;
  if (!thinking) return undefined;
  const display = 'display' in thinking && thinking.display ? { display: thinking.display } : {};
  switch (thinking.type) {
    case 'disabled':
      return { type: 'disabled' };
    case 'adaptive':
      return { type: 'adaptive', ...display };
    case 'enabled':
      if (thinking.budget_tokens >= request.max_tokens) {
        throw invalidField(
          'thinking.budget_tokens',
          `must be less than max_tokens (${String(request.max_tokens)}); thinking tokens count towards max_tokens`,
        );
      }
      return { type: 'budget', budgetTokens: thinking.budget_tokens, ...display };
  }
}

function checkToolChoice(request: AnthropicRequestBody): void {
  const choice = request.tool_choice;
  if (!choice || choice.type === 'none' || choice.type === 'auto') return;
  const tools = request.tools ?? [];
  if (tools.length === 0) {
    throw invalidField('tool_choice', `tool_choice "${choice.type}" requires tools`);
  }
  if (choice.type === 'tool' && !tools.some((tool) => tool.name === choice.name)) {
    throw invalidField('tool_choice.name', `no tool named "${choice.name}" in tools`);
  }
}

function decodeMessage(message: RequestMessage, index: number): Message[] {
  switch (message.role) {
    case 'system':
      return typeof message.content === 'string'
        ? [{ role: 'system', content: message.content }]
        : message.content.map((block) => ({
            role: 'system',
            content: block.text,
            ...cached(block.cache_control),
          }));
    case 'user':
      if (typeof message.content === 'string') {
        return [{ role: 'user', content: [{ type: 'text', text: message.content }] }];
      }
      return decodeUserBlocks(message.content, index);
    case 'assistant':
      if (typeof message.content === 'string') return [{ role: 'assistant', content: message.content }];
      return decodeAssistantBlocks(message.content);
  }
}

/**
 * One Anthropic user turn holds tool results and new user content together; the canonical model has a
 * `tool` message per result. Order is kept; images inside a tool result (which a canonical tool message
 * cannot hold) follow the results as user content so the model still sees them.
 */
function decodeUserBlocks(blocks: UserBlocks, messageIndex: number): Message[] {
  const out: Message[] = [];
  let parts: ContentPart[] = [];
  const flush = (): void => {
    if (parts.length > 0) out.push({ role: 'user', content: parts });
    parts = [];
  };
  blocks.forEach((block, blockIndex) => {
    switch (block.type) {
      case 'text':
        if (block.text === '') {
          throw invalidField(
            `messages.${messageIndex}.content.${blockIndex}.text`,
            'text content blocks must be non-empty',
          );
        }
        parts.push({ type: 'text', text: block.text, ...cached(block.cache_control) });
        break;
      case 'image':
        parts.push({ ...decodeImage(block.source), ...cached(block.cache_control) });
        break;
      case 'tool_result': {
        flush();
        const content = block.content;
        let text = '';
        const images: ContentPart[] = [];
        if (typeof content === 'string') text = content;
        else if (content) {
          text = content
            .filter((part) => part.type === 'text')
            .map((part) => part.text)
            .join('\n');
          for (const part of content) if (part.type === 'image') images.push(decodeImage(part.source));
        }
        out.push({
          role: 'tool',
          toolCallId: block.tool_use_id,
          content: text,
          ...(block.is_error === true ? { isError: true } : {}),
          ...cached(block.cache_control),
        });
        parts.push(...images);
        break;
      }
    }
  });
  flush();
  return out;
}

function decodeImage(
  source: { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string },
): ContentPart {
  return source.type === 'base64'
    ? { type: 'image', url: `data:${source.media_type};base64,${source.data}`, mediaType: source.media_type }
    : { type: 'image', url: source.url };
}

/**
 * Texts are joined into one (the canonical turn has one text), so a breakpoint on any of them marks
 * that text; thinking blocks are kept in order ahead of it, which is where Anthropic puts them.
 */
function decodeAssistantBlocks(blocks: AssistantBlocks): Message[] {
  const texts: string[] = [];
  let textCache: CacheControl | undefined;
  const toolCalls: ToolCall[] = [];
  const reasoning: ReasoningBlock[] = [];
  for (const block of blocks) {
    switch (block.type) {
      case 'text':
        texts.push(block.text);
        textCache = block.cache_control ?? textCache;
        break;
      case 'tool_use':
        toolCalls.push({
          id: block.id,
          name: block.name,
          arguments: JSON.stringify(block.input),
          ...cached(block.cache_control),
        });
        break;
      case 'thinking':
        reasoning.push({ type: 'thinking', text: block.thinking, signature: block.signature });
        break;
      case 'redacted_thinking':
        reasoning.push({ type: 'redacted', data: block.data });
        break;
    }
  }
  if (texts.length === 0 && toolCalls.length === 0 && reasoning.length === 0) return [];
  return [
    {
      role: 'assistant',
      content: texts.length > 0 ? texts.join('') : null,
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(reasoning.length > 0 ? { reasoning } : {}),
      ...cached(textCache),
    },
  ];
}

function decodeTool(tool: NonNullable<AnthropicRequestBody['tools']>[number]): ToolDefinition {
  const parameters: JsonObject = { ...tool.input_schema };
  return {
    name: tool.name,
    parameters,
    ...(tool.description !== undefined ? { description: tool.description } : {}),
    ...cached(tool.cache_control),
  };
}

function decodeToolChoice(choice: NonNullable<AnthropicRequestBody['tool_choice']>): ToolChoice {
  switch (choice.type) {
    case 'auto':
      return { type: 'auto' };
    case 'any':
      return { type: 'required' };
    case 'none':
      return { type: 'none' };
    case 'tool':
      return { type: 'tool', name: choice.name };
  }
}

export function toAnthropicMessage(response: ChatResponse, model: string): AnthropicMessage {
  const content: AnthropicResponseBlock[] = (response.reasoning ?? []).map(toAnthropicReasoningBlock);
  if (response.content !== null && (response.content !== '' || response.toolCalls.length === 0)) {
    content.push({ type: 'text', text: response.content });
  }
  for (const call of response.toolCalls) {
    content.push({
      type: 'tool_use',
      id: call.id,
      name: call.name,
      input: argumentsToObject(call.arguments),
    });
  }
  const stopReason = toAnthropicStopReason(response.finishReason, response.stopSequence);
  return {
    id: toAnthropicMessageId(response.id),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReason,
    stop_sequence: stopReason === 'stop_sequence' ? (response.stopSequence ?? null) : null,
    usage: toAnthropicUsage(response.usage, true),
  };
}

type OpenBlock =
  | { index: number; kind: 'text' }
  | { index: number; kind: 'tool'; toolIndex: number }
  /** `signed` once its signature went out: the block is complete, more reasoning starts another. */
  | { index: number; kind: 'thinking'; signed: boolean };

/**
 * Writes the Anthropic SSE sequence: message_start, then per block content_block_start, deltas and
 * content_block_stop (one block open at a time, indexes counted from 0 across thinking, text and
 * tool_use blocks), then message_delta and message_stop. A thinking block opens with empty `thinking`
 * and `signature`, grows by thinking_delta and ends with a signature_delta, as the API streams it;
 * a redacted one is a start and a stop with its data.
 *
 * message_start is held back until the first content or the end so it can carry the input usage that
 * providers send right after their own start event. message_delta is written by `end()`, because
 * OpenAI-style upstreams report usage after the finish reason; it carries the cumulative totals, which
 * the SDK's stream accumulator takes over.
 */
export class AnthropicStreamEncoder implements StreamEncoder {
  private messageId: string | undefined;
  private usage: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 };
  private started = false;
  private open: OpenBlock | undefined;
  private nextIndex = 0;
  private readonly toolBlocks = new Map<number, number>();
  private finish:
    | { reason: ChatResponse['finishReason']; stopSequence: string | null | undefined }
    | undefined;

  constructor(private readonly model: string) {}

  encode(event: StreamEvent): string {
    switch (event.type) {
      case 'start':
        this.messageId ??= toAnthropicMessageId(event.id);
        return '';
      case 'usage':
        this.usage = mergeUsage(this.usage, event.usage);
        return '';
      case 'reasoning': {
        const out = this.ensureThinking();
        const index = this.open?.index ?? 0;
        if (event.delta === '') return out;
        return (
          out +
          frame({
            type: 'content_block_delta',
            index,
            delta: { type: 'thinking_delta', thinking: event.delta },
          })
        );
      }
      case 'reasoning_signature': {
        const out = this.ensureThinking();
        if (this.open?.kind !== 'thinking') return out;
        this.open.signed = true;
        return (
          out +
          frame({
            type: 'content_block_delta',
            index: this.open.index,
            delta: { type: 'signature_delta', signature: event.signature },
          })
        );
      }
      case 'reasoning_redacted': {
        const out =
          this.ensureStarted() +
          this.closeOpen() +
          this.openBlock({ type: 'redacted_thinking', data: event.data }, undefined);
        return out + this.closeOpen();
      }
      case 'text': {
        if (event.delta === '') return '';
        let out = this.ensureStarted();
        if (this.open?.kind !== 'text') {
          out += this.closeOpen();
          out += this.openBlock({ type: 'text', text: '' }, undefined);
        }
        const index = this.open?.index ?? 0;
        return (
          out +
          frame({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: event.delta } })
        );
      }
      case 'tool_call_start': {
        let out = this.ensureStarted() + this.closeOpen();
        out += this.openBlock({ type: 'tool_use', id: event.id, name: event.name, input: {} }, event.index);
        return out;
      }
      case 'tool_call_delta': {
        const index = this.toolBlocks.get(event.index);
        // A delta for a call that never started has no block to belong to.
        if (index === undefined || event.argumentsDelta === '') return '';
        // A delta for an already closed block (providers do not interleave calls, but the canonical model
        // allows it) still goes to its own index, which is how SDK accumulators key content.
        return frame({
          type: 'content_block_delta',
          index,
          delta: { type: 'input_json_delta', partial_json: event.argumentsDelta },
        });
      }
      case 'finish':
        this.finish = { reason: event.finishReason, stopSequence: event.stopSequence };
        return this.ensureStarted() + this.closeOpen();
    }
  }

  end(usage: Usage): string {
    this.usage = usage;
    let out = this.ensureStarted() + this.closeOpen();
    const stopReason = toAnthropicStopReason(this.finish?.reason ?? 'stop', this.finish?.stopSequence);
    out += frame({
      type: 'message_delta',
      delta: {
        stop_reason: stopReason,
        stop_sequence: stopReason === 'stop_sequence' ? (this.finish?.stopSequence ?? null) : null,
      },
      usage: toAnthropicUsage(usage),
    });
    out += frame({ type: 'message_stop' });
    return out;
  }

  error(message: string, type: string): string {
    return frame({ type: 'error', error: { type, message } });
  }

  private ensureStarted(): string {
    if (this.started) return '';
    this.started = true;
    return frame({
      type: 'message_start',
      message: {
        id: this.messageId ?? `msg_${crypto.randomUUID().replaceAll('-', '')}`,
        type: 'message',
        role: 'assistant',
        model: this.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: toAnthropicUsage(this.usage, true),
      },
    });
  }

  /** Keeps the open, unsigned thinking block, or opens a new one. */
  private ensureThinking(): string {
    const out = this.ensureStarted();
    if (this.open?.kind === 'thinking' && !this.open.signed) return out;
    return (
      out + this.closeOpen() + this.openBlock({ type: 'thinking', thinking: '', signature: '' }, undefined)
    );
  }

  private openBlock(
    block: AnthropicContentBlockStartEvent['content_block'],
    toolIndex: number | undefined,
  ): string {
    const index = this.nextIndex++;
    if (toolIndex !== undefined) {
      this.open = { index, kind: 'tool', toolIndex };
      this.toolBlocks.set(toolIndex, index);
    } else if (block.type === 'thinking') this.open = { index, kind: 'thinking', signed: false };
    else this.open = { index, kind: 'text' };
    return frame({ type: 'content_block_start', index, content_block: block });
  }

  private closeOpen(): string {
    if (!this.open) return '';
    const index = this.open.index;
    this.open = undefined;
    return frame({ type: 'content_block_stop', index });
  }
}

function frame(event: AnthropicStreamEvent): string {
  return sseFrame(JSON.stringify(toJsonObject(event)), event.type);
}

export const anthropicCaller: CallerFormat = {
  name: 'anthropic',
  decodeChatRequest: decodeAnthropicRequest,
  encodeChatResponse: (response, model) => toJsonObject(toAnthropicMessage(response, model)),
  createStreamEncoder: (model) => new AnthropicStreamEncoder(model),
};

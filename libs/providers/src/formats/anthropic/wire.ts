/**
 * The Anthropic Messages API wire shapes FlowLoom writes (requests to Anthropic, responses and SSE
 * events to Anthropic clients). Type aliases, not interfaces, so they convert to `JsonObject`.
 * Field names follow https://docs.anthropic.com/en/api/messages and `@anthropic-ai/sdk` types.
 */
import type { CacheControl, FinishReason, JsonObject, ReasoningBlock, Usage } from '../../canonical.js';

export type AnthropicStopReason =
  | 'end_turn'
  | 'max_tokens'
  | 'stop_sequence'
  | 'tool_use'
  | 'pause_turn'
  | 'refusal'
  | 'model_context_window_exceeded';

/** `cache_control` as the request allows it on system, content and tool blocks. */
type Cached = { cache_control?: CacheControl };

export type AnthropicTextBlock = { type: 'text'; text: string } & Cached;
export type AnthropicToolUseBlock = {
  type: 'tool_use';
  id: string;
  name: string;
  input: JsonObject;
} & Cached;
export type AnthropicThinkingBlock = { type: 'thinking'; thinking: string; signature: string };
export type AnthropicRedactedThinkingBlock = { type: 'redacted_thinking'; data: string };
export type AnthropicResponseBlock =
  | AnthropicThinkingBlock
  | AnthropicRedactedThinkingBlock
  | AnthropicTextBlock
  | AnthropicToolUseBlock;
export const ANTHROPIC_IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'] as const;
export type AnthropicImageType = (typeof ANTHROPIC_IMAGE_TYPES)[number];

export type AnthropicImageBlock = {
  type: 'image';
  source: { type: 'base64'; media_type: AnthropicImageType; data: string } | { type: 'url'; url: string };
} & Cached;
export type AnthropicToolResultBlock = {
  type: 'tool_result';
  tool_use_id: string;
  content: string;
  is_error?: boolean;
} & Cached;
export type AnthropicRequestBlock =
  | AnthropicTextBlock
  | AnthropicImageBlock
  | AnthropicToolUseBlock
  | AnthropicToolResultBlock
  | AnthropicThinkingBlock
  | AnthropicRedactedThinkingBlock;

export type AnthropicWireMessage = { role: 'user' | 'assistant'; content: AnthropicRequestBlock[] };

export type AnthropicTool = {
  name: string;
  description?: string;
  input_schema: JsonObject & { type: 'object' };
} & Cached;

type ThinkingDisplay = { display?: 'summarized' | 'omitted' };
export type AnthropicThinkingConfig =
  | ({ type: 'enabled'; budget_tokens: number } & ThinkingDisplay)
  | { type: 'disabled' }
  | ({ type: 'adaptive' } & ThinkingDisplay);

export type AnthropicToolChoice =
  | { type: 'auto'; disable_parallel_tool_use?: boolean }
  | { type: 'any'; disable_parallel_tool_use?: boolean }
  | { type: 'tool'; name: string; disable_parallel_tool_use?: boolean }
  | { type: 'none' };

export type AnthropicRequest = {
  model: string;
  max_tokens: number;
  messages: AnthropicWireMessage[];
  system?: string | AnthropicTextBlock[];
  temperature?: number;
  top_p?: number;
  stop_sequences?: string[];
  stream?: boolean;
  tools?: AnthropicTool[];
  tool_choice?: AnthropicToolChoice;
  metadata?: { user_id: string };
  output_config?: { format: { type: 'json_schema'; schema: JsonObject } };
  thinking?: AnthropicThinkingConfig;
  cache_control?: CacheControl;
};

export type AnthropicUsage = {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  /** Only when the thinking tokens are known (the API reports them for thinking answers). */
  output_tokens_details?: { thinking_tokens: number };
  /** Cache writes by TTL, in messages (not in message_delta, as the API does). */
  cache_creation?: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
};

export type AnthropicMessage = {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: AnthropicResponseBlock[];
  stop_reason: AnthropicStopReason | null;
  stop_sequence: string | null;
  usage: AnthropicUsage;
};

export type AnthropicMessageStartEvent = { type: 'message_start'; message: AnthropicMessage };
export type AnthropicContentBlockStartEvent = {
  type: 'content_block_start';
  index: number;
  content_block:
    | AnthropicTextBlock
    | AnthropicToolUseBlock
    // The API opens a thinking block with both fields empty; they fill in through deltas.
    | { type: 'thinking'; thinking: ''; signature: '' }
    | AnthropicRedactedThinkingBlock;
};
export type AnthropicContentBlockDeltaEvent = {
  type: 'content_block_delta';
  index: number;
  delta:
    | { type: 'text_delta'; text: string }
    | { type: 'input_json_delta'; partial_json: string }
    | { type: 'thinking_delta'; thinking: string }
    | { type: 'signature_delta'; signature: string };
};
export type AnthropicContentBlockStopEvent = { type: 'content_block_stop'; index: number };
export type AnthropicMessageDeltaEvent = {
  type: 'message_delta';
  delta: { stop_reason: AnthropicStopReason | null; stop_sequence: string | null };
  usage: AnthropicUsage;
};
export type AnthropicMessageStopEvent = { type: 'message_stop' };
export type AnthropicErrorEvent = { type: 'error'; error: { type: string; message: string } };

export type AnthropicStreamEvent =
  | AnthropicMessageStartEvent
  | AnthropicContentBlockStartEvent
  | AnthropicContentBlockDeltaEvent
  | AnthropicContentBlockStopEvent
  | AnthropicMessageDeltaEvent
  | AnthropicMessageStopEvent
  | AnthropicErrorEvent;

/**
 * Anthropic reports uncached input apart from cache reads and writes; canonical input includes both.
 * `withCacheCreation` adds the writes' TTL split, which messages carry and message_delta does not; it is
 * known only when the answer came from Anthropic.
 */
export function toAnthropicUsage(usage: Partial<Usage>, withCacheCreation = false): AnthropicUsage {
  const cacheRead = usage.cachedInputTokens ?? 0;
  const cacheWrite = usage.cacheWriteTokens ?? 0;
  const hourWrites = Math.min(usage.cacheWrite1hTokens ?? 0, cacheWrite);
  return {
    input_tokens: Math.max(0, (usage.inputTokens ?? 0) - cacheRead - cacheWrite),
    output_tokens: usage.outputTokens ?? 0,
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
    ...(usage.reasoningTokens !== undefined
      ? { output_tokens_details: { thinking_tokens: usage.reasoningTokens } }
      : {}),
    ...(withCacheCreation && usage.cacheWriteTokens !== undefined
      ? {
          cache_creation: {
            ephemeral_5m_input_tokens: cacheWrite - hourWrites,
            ephemeral_1h_input_tokens: hourWrites,
          },
        }
      : {}),
  };
}

export function fromAnthropicUsage(usage: {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number | null | undefined;
  cache_read_input_tokens?: number | null | undefined;
  output_tokens_details?: { thinking_tokens?: number | null | undefined } | null | undefined;
  cache_creation?: { ephemeral_1h_input_tokens?: number | null | undefined } | null | undefined;
}): Usage {
  const cacheRead = usage.cache_read_input_tokens ?? 0;
  const cacheWrite = usage.cache_creation_input_tokens ?? 0;
  const thinking = usage.output_tokens_details?.thinking_tokens;
  const hourWrites = usage.cache_creation?.ephemeral_1h_input_tokens;
  return {
    inputTokens: usage.input_tokens + cacheRead + cacheWrite,
    outputTokens: usage.output_tokens,
    cachedInputTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    ...(typeof hourWrites === 'number' && hourWrites > 0 ? { cacheWrite1hTokens: hourWrites } : {}),
    ...(typeof thinking === 'number' ? { reasoningTokens: thinking } : {}),
  };
}

export function toAnthropicStopReason(
  reason: FinishReason,
  stopSequence: string | null | undefined,
): AnthropicStopReason {
  switch (reason) {
    case 'stop':
      return typeof stopSequence === 'string' ? 'stop_sequence' : 'end_turn';
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    case 'error':
      // Anthropic has no error stop reason; the error itself is reported separately.
      return 'end_turn';
  }
}

export function fromAnthropicStopReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      // end_turn, stop_sequence, pause_turn and anything newer.
      return 'stop';
  }
}

/** Reasoning goes out exactly as Anthropic sent it, which its signature check requires. */
export function toAnthropicReasoningBlock(
  block: ReasoningBlock,
): AnthropicThinkingBlock | AnthropicRedactedThinkingBlock {
  return block.type === 'thinking'
    ? { type: 'thinking', thinking: block.text, signature: block.signature }
    : { type: 'redacted_thinking', data: block.data };
}

/** Anthropic message ids start with `msg_`; other providers' ids are kept behind that prefix. */
export function toAnthropicMessageId(id: string): string {
  return id.startsWith('msg_') ? id : `msg_${id}`;
}

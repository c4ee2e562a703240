/**
 * The gateway's own chat model. Every caller format (OpenAI, Anthropic, Gemini) is decoded into it and
 * every provider format is encoded from it, so N formats need N codecs rather than N×N translators.
 * It is close to the OpenAI shape but owns its names, so no provider's quirks leak into the core.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * A prompt-cache breakpoint (Anthropic `cache_control`, e.g. `{type:'ephemeral', ttl:'1h'}`), kept as the
 * caller sent it so an Anthropic upstream gets it unchanged. Providers without explicit breakpoints
 * (OpenAI and Gemini cache implicitly) drop it: a cache hint is an optimisation, never a reason to fail.
 */
export type CacheControl = JsonObject & { type: 'ephemeral' };

/** Fields that may carry a cache breakpoint. */
export interface Cacheable {
  cacheControl?: CacheControl;
}

export type ContentPart =
  | ({ type: 'text'; text: string } & Cacheable)
  /** `url` is an https URL or a `data:` URL; `mediaType` is known for data URLs and Anthropic/Gemini inline data. */
  | ({ type: 'image'; url: string; mediaType?: string } & Cacheable);

export interface ToolCall extends Cacheable {
  id: string;
  name: string;
  /** The arguments as the JSON text the model produced (it may be invalid JSON; we never re-serialize it). */
  arguments: string;
}

/**
 * The model's visible reasoning, as a provider returned it. Anthropic signs its thinking blocks and
 * requires them back unchanged (signature included) in later turns that use tools, so they are carried
 * opaquely; `redacted` blocks hold only the encrypted `data`.
 */
export type ReasoningBlock =
  | { type: 'thinking'; text: string; signature: string }
  | { type: 'redacted'; data: string };

export type Message =
  | ({ role: 'system'; content: string } & Cacheable)
  | { role: 'user'; content: ContentPart[] }
  | ({
      role: 'assistant';
      content: string | null;
      toolCalls?: ToolCall[];
      /** Reasoning that preceded this turn's text and tool calls. */
      reasoning?: ReasoningBlock[];
    } & Cacheable)
  | ({ role: 'tool'; toolCallId: string; content: string; isError?: boolean } & Cacheable);

export interface ToolDefinition extends Cacheable {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters: JsonObject;
}

/** OpenAI `reasoning_effort` levels, as its SDK lists them (Gemini 3 `thinkingLevel` has four of them). */
export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'] as const;
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number];

/**
 * How much the model may think before answering, in whichever terms the caller used; each provider
 * codec maps it to its own parameter (see reasoning.ts for the stated mapping).
 * - `budget`: a token budget (Anthropic `thinking.budget_tokens`, Gemini `thinkingBudget` > 0).
 * - `effort`: a level (OpenAI `reasoning_effort`, Gemini `thinkingLevel`).
 * - `adaptive`: the model decides (Anthropic `thinking.type: adaptive`, Gemini `thinkingBudget: -1`).
 * - `disabled`: no thinking (Anthropic `thinking.type: disabled`, Gemini `thinkingBudget: 0`).
 * `display` is Anthropic's choice of summarized or omitted thinking text.
 */
export type ReasoningConfig = (
  | { type: 'budget'; budgetTokens: number }
  | { type: 'effort'; effort: ReasoningEffort }
  | { type: 'adaptive' }
  | { type: 'disabled' }
) & { display?: 'summarized' | 'omitted' };

export type ToolChoice =
  | { type: 'auto' }
  | { type: 'none' }
  | { type: 'required' }
  | { type: 'tool'; name: string };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: JsonObject; strict?: boolean };

export interface ChatRequest {
  /** The model the caller asked for (an alias or a provider model); routing resolves it. */
  model: string;
  messages: Message[];
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
  stream: boolean;
  /** OpenAI `stream_options.include_usage`: the caller wants a final usage chunk. */
  includeUsage?: boolean;
  /** An end-user id for abuse tracking, forwarded where the provider supports it. */
  user?: string;
  seed?: number;
  reasoning?: ReasoningConfig;
  /** Anthropic's top-level `cache_control` (automatic breakpoint on the last cacheable block). */
  cacheControl?: CacheControl;
  /**
   * Anthropic beta features an Anthropic-format caller opted into (its `anthropic-beta` header). Only
   * Anthropic upstreams get them; the other providers do not know these names.
   */
  anthropicBetas?: string[];
}

export interface Usage {
  /** All prompt tokens, cached ones included. */
  inputTokens: number;
  outputTokens: number;
  /** The part of `inputTokens` served from the provider's prompt cache. */
  cachedInputTokens: number;
  /** Anthropic bills cache writes separately; part of `inputTokens`. */
  cacheWriteTokens?: number;
  /** The part of `cacheWriteTokens` cached for one hour (`ttl: '1h'`), billed above five-minute writes. */
  cacheWrite1hTokens?: number;
  /**
   * The part of `outputTokens` spent on reasoning, when the provider reports it (OpenAI
   * `reasoning_tokens`, Gemini `thoughtsTokenCount`, Anthropic `output_tokens_details.thinking_tokens`).
   * Absent means unknown, not zero.
   */
  reasoningTokens?: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'error';

export interface ChatResponse {
  id: string;
  /** The model that actually answered, as the provider named it. */
  model: string;
  created: number;
  content: string | null;
  toolCalls: ToolCall[];
  /** Reasoning blocks in the order the provider sent them, before the text and tool calls. */
  reasoning?: ReasoningBlock[];
  finishReason: FinishReason;
  /** What the provider said, for callers whose format has a richer set (e.g. Anthropic `stop_sequence`). */
  stopSequence?: string | null;
  usage: Usage;
}

/** A streamed answer, decoded from any provider's SSE into one ordered sequence of events. */
export type StreamEvent =
  | { type: 'start'; id: string; model: string; created: number }
  | { type: 'text'; delta: string }
  | { type: 'tool_call_start'; index: number; id: string; name: string }
  | { type: 'tool_call_delta'; index: number; argumentsDelta: string }
  /**
   * Reasoning text; it continues the open thinking block, or opens one (a block is closed by any other
   * content, and by its signature, so two consecutive blocks stay apart).
   */
  | { type: 'reasoning'; delta: string }
  /** The signature of the open thinking block (one is opened for a block whose text was omitted). */
  | { type: 'reasoning_signature'; signature: string }
  /** A whole redacted thinking block. */
  | { type: 'reasoning_redacted'; data: string }
  | { type: 'finish'; finishReason: FinishReason; stopSequence?: string | null }
  /** Usage may arrive in pieces (Anthropic sends input at start, output at the end); later values win per field. */
  | { type: 'usage'; usage: Partial<Usage> };

export interface EmbeddingsRequest {
  model: string;
  input: string[];
  dimensions?: number;
  encodingFormat?: 'float' | 'base64';
  user?: string;
}

export interface EmbeddingsResponse {
  model: string;
  data: number[][];
  usage: { inputTokens: number };
}

export function emptyUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 };
}

/** Folds a stream's usage events into one total; later values replace earlier ones per field. */
export function mergeUsage(total: Usage, part: Partial<Usage>): Usage {
  const merged: Usage = {
    inputTokens: part.inputTokens ?? total.inputTokens,
    outputTokens: part.outputTokens ?? total.outputTokens,
    cachedInputTokens: part.cachedInputTokens ?? total.cachedInputTokens,
  };
  // Optional counters stay absent until some provider event reports them (absent means unknown).
  for (const field of ['cacheWriteTokens', 'cacheWrite1hTokens', 'reasoningTokens'] as const) {
    const value = part[field] ?? total[field];
    if (value !== undefined) merged[field] = value;
  }
  return merged;
}

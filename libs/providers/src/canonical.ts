/**
 * The gateway's own chat model. Every caller format (OpenAI, Anthropic, Gemini) is decoded into it and
 * every provider format is encoded from it, so N formats need N codecs rather than N×N translators.
 * It is close to the OpenAI shape but owns its names, so no provider's quirks leak into the core.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type ContentPart =
  | { type: 'text'; text: string }
  /** `url` is an https URL or a `data:` URL; `mediaType` is known for data URLs and Anthropic/Gemini inline data. */
  | { type: 'image'; url: string; mediaType?: string };

export interface ToolCall {
  id: string;
  name: string;
  /** The arguments as the JSON text the model produced (it may be invalid JSON; we never re-serialize it). */
  arguments: string;
}

export type Message =
  | { role: 'system'; content: string }
  | { role: 'user'; content: ContentPart[] }
  | { role: 'assistant'; content: string | null; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; content: string; isError?: boolean };

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters: JsonObject;
}

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
}

export interface Usage {
  /** All prompt tokens, cached ones included. */
  inputTokens: number;
  outputTokens: number;
  /** The part of `inputTokens` served from the provider's prompt cache. */
  cachedInputTokens: number;
  /** Anthropic bills cache writes separately; part of `inputTokens`. */
  cacheWriteTokens?: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'error';

export interface ChatResponse {
  id: string;
  /** The model that actually answered, as the provider named it. */
  model: string;
  created: number;
  content: string | null;
  toolCalls: ToolCall[];
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
  return {
    inputTokens: part.inputTokens ?? total.inputTokens,
    outputTokens: part.outputTokens ?? total.outputTokens,
    cachedInputTokens: part.cachedInputTokens ?? total.cachedInputTokens,
    ...(part.cacheWriteTokens !== undefined || total.cacheWriteTokens !== undefined
      ? { cacheWriteTokens: part.cacheWriteTokens ?? total.cacheWriteTokens }
      : {}),
  };
}

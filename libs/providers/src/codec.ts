import type {
  ChatRequest,
  ChatResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  JsonObject,
  StreamEvent,
  Usage,
} from './canonical.js';
import type { SseMessage } from './sse.js';

/** Request headers as Node parses them (a repeated header may come as an array). */
export type CallerHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * A caller-facing API format (what a client SDK speaks to the gateway).
 * Decoders throw `AppError('invalid_request', message, { param })` naming the offending field.
 */
export interface CallerFormat {
  readonly name: 'openai' | 'anthropic' | 'gemini';
  /** `headers` are the caller's request headers, for the few a format defines (Anthropic `anthropic-beta`). */
  decodeChatRequest(body: unknown, headers?: CallerHeaders): ChatRequest;
  /** `model` is the name the caller asked for, echoed back as the providers do. */
  encodeChatResponse(response: ChatResponse, model: string): JsonObject;
  createStreamEncoder(model: string, options: { includeUsage: boolean }): StreamEncoder;
}

/** Turns canonical stream events into the caller's SSE text, frame by frame. */
export interface StreamEncoder {
  /** Returns the SSE text to write for this event ('' when the format has nothing to say). */
  encode(event: StreamEvent): string;
  /** The closing frames (e.g. OpenAI's usage chunk and `data: [DONE]`); `usage` is the stream's total. */
  end(usage: Usage): string;
  /** Frames that report an error after the stream has started (headers are already sent). */
  error(message: string, type: string): string;
}

/** A provider-facing wire format (what the gateway speaks to an upstream). */
export interface ProviderWire {
  /** The request body for the upstream; `model` is the provider's model or deployment name. */
  encodeChatRequest(request: ChatRequest, model: string): JsonObject;
  /** Throws `AppError('upstream_bad_response', ...)` when the body is not what the provider documents. */
  decodeChatResponse(body: unknown): ChatResponse;
  createStreamDecoder(): StreamDecoder;
  /** Reads the provider's error body (already parsed JSON, or the raw text when it was not JSON). */
  decodeError(status: number, body: unknown): { message: string; type: string };
  encodeEmbeddingsRequest?(request: EmbeddingsRequest, model: string): JsonObject;
  decodeEmbeddingsResponse?(body: unknown): EmbeddingsResponse;
}

export interface StreamDecoder {
  /** Canonical events for one SSE message from the upstream. */
  push(message: SseMessage): StreamEvent[];
  /** True once the provider's terminal frame was seen (`[DONE]`, `message_stop`, a Gemini finishReason with usage). */
  readonly done: boolean;
}

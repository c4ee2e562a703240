import type { IncomingHttpHeaders } from 'node:http';

export type FakeProviderKind = 'openai' | 'azure' | 'anthropic' | 'gemini';

/**
 * Token counts in one provider-neutral meaning, encoded the way each provider reports them:
 * - `input` is every prompt token the model saw, cached ones included
 *   (OpenAI `prompt_tokens`, Gemini `promptTokenCount`; Anthropic reports
 *   `input_tokens = input - cached - cacheWrite` beside the two cache counters).
 * - `cached` is the part of `input` read from the prompt cache
 *   (OpenAI `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`,
 *   Gemini `cachedContentTokenCount`).
 * - `cacheWrite` is the part of `input` written to the cache (Anthropic only:
 *   `cache_creation_input_tokens`; the other providers do not report it).
 * - `cacheWrite1h` is the part of `cacheWrite` cached for one hour (Anthropic
 *   `cache_creation.ephemeral_1h_input_tokens`; the rest is reported as `ephemeral_5m_input_tokens`).
 * - `reasoning` is the part of `output` spent thinking (OpenAI `completion_tokens_details.reasoning_tokens`,
 *   Anthropic `output_tokens_details.thinking_tokens`, Gemini `thoughtsTokenCount` beside a
 *   `candidatesTokenCount` that then excludes it). Anthropic reports it only for answers with thinking.
 */
export interface FakeUsage {
  input?: number;
  output?: number;
  cached?: number;
  cacheWrite?: number;
  cacheWrite1h?: number;
  reasoning?: number;
}

/**
 * An Anthropic extended-thinking block, sent before the answer's text and tool calls (the other fakes
 * ignore thinking). A thinking block streams as `content_block_start` with empty `thinking` and
 * `signature`, one `thinking_delta` per chunk, then one `signature_delta`; a redacted one as a start
 * carrying its `data`, then a stop.
 */
export type FakeThinkingBlock =
  | { thinking: string; signature?: string; chunks?: readonly string[] }
  | { redacted: string };

export interface FakeToolCall {
  name: string;
  /** An object is serialised with JSON.stringify; a string is sent as is (it may be invalid JSON on purpose). */
  arguments: Readonly<Record<string, unknown>> | string;
  /** Defaults to a provider-shaped id (`call_…`, `toolu_01…`); Gemini sends no id unless one is given. */
  id?: string;
  /** How many fragments a streamed argument string is cut into (default 3). Gemini never fragments. */
  fragments?: number;
}

/**
 * Why the answer stopped, in neutral terms:
 * OpenAI stop|length|tool_calls|content_filter; Anthropic end_turn|max_tokens|tool_use|stop_sequence|refusal;
 * Gemini STOP|MAX_TOKENS|STOP|STOP|SAFETY.
 */
export type FakeFinish = 'stop' | 'length' | 'tool_calls' | 'stop_sequence' | 'content_filter';

export interface FakeTiming {
  /** Wait this long before sending the status line and headers. */
  delayMs?: number;
  /** Wait this long between streamed frames (0: the whole stream is written at once). */
  chunkDelayMs?: number;
}

export interface FakeReplyContent {
  /** The answer text; defaults to `chunks.join('')`, or to a deterministic echo of the last user message. */
  text?: string;
  /** How the text is split into streamed deltas; defaults to one chunk per word. */
  chunks?: readonly string[];
  toolCalls?: readonly FakeToolCall[];
  /** Anthropic only: thinking blocks ahead of the text. */
  thinking?: readonly FakeThinkingBlock[];
  /** Missing counts are estimated from the request and answer (about 4 characters a token). */
  usage?: FakeUsage;
  /**
   * Bill like a real provider: when the request's max_tokens (OpenAI `max_tokens` or
   * `max_completion_tokens`, Anthropic `max_tokens`, Gemini `maxOutputTokens`) is below the answer's
   * output tokens, the reported output is cut to it and the answer finishes with `length` (the text is
   * sent as is).
   */
  honourMaxTokens?: boolean;
  /** Defaults to `tool_calls` when there are tool calls, `stop` otherwise. */
  finish?: FakeFinish;
  /** The matched stop sequence, reported by Anthropic when `finish` is `stop_sequence`. */
  stopSequence?: string;
  /** The model name reported in the answer; defaults to the requested model (Azure: the deployment's model). */
  model?: string;
}

/** Answer normally. */
export interface FakeReplyBehaviour extends FakeReplyContent, FakeTiming {
  kind: 'reply';
}

/** Answer with an HTTP error and the provider's own error body. */
export interface FakeErrorBehaviour {
  kind: 'error';
  status: number;
  /** Defaults to the provider's usual message for that status. */
  message?: string;
  /** Overrides the provider's error type (OpenAI `type`, Anthropic `error.type`, Gemini `status`). */
  type?: string;
  /** Overrides OpenAI's / Azure's `code`. */
  code?: string | null;
  /** Seconds (a number) or an HTTP date / raw value (a string). Sent as `retry-after` (Azure also sends
   *  `retry-after-ms`); Gemini sends no header and puts a `google.rpc.RetryInfo` detail in the body instead. */
  retryAfter?: number | string;
  headers?: Readonly<Record<string, string>>;
  delayMs?: number;
}

/**
 * Start a normal stream, then after `afterChunks` content chunks send the provider's in-stream error
 * (Anthropic `event: error`, OpenAI/Azure and Gemini a `data: {"error": …}` frame) and end the response.
 * A non-streamed request gets a plain HTTP error with `status` instead.
 */
export interface FakeStreamErrorBehaviour extends FakeReplyContent, FakeTiming {
  kind: 'stream-error';
  afterChunks: number;
  /** Picks the error type (default 529 for Anthropic, 500 elsewhere), and the status of a non-streamed answer. */
  status?: number;
  message?: string;
  type?: string;
}

/**
 * Cut the connection. Without `afterChunks`: the socket is destroyed before any response.
 * With it: headers and `afterChunks` content chunks are sent (for a non-streamed request, half the body),
 * then the socket is destroyed.
 */
export interface FakeDisconnectBehaviour extends FakeReplyContent, FakeTiming {
  kind: 'disconnect';
  afterChunks?: number;
}

/**
 * Stop answering until the client gives up. Without `afterChunks`: nothing at all is sent.
 * With it: headers and `afterChunks` content chunks are sent (a non-streamed request gets headers only).
 * The client's abort is recorded (`RecordedRequest.aborted`).
 */
export interface FakeHangBehaviour extends FakeReplyContent, FakeTiming {
  kind: 'hang';
  afterChunks?: number;
}

/**
 * Send something that is not the provider's format: for a non-streamed request a 200 whose body is not JSON
 * (although labelled `application/json`); for a streamed one a 200 event stream with malformed frames.
 */
export interface FakeGarbageBehaviour extends FakeTiming {
  kind: 'garbage';
  /** Defaults to `sse` for streamed requests, `json` otherwise. */
  shape?: 'json' | 'sse';
  /** Replaces the default garbage. */
  body?: string;
  status?: number;
}

export type FakeBehaviour =
  | FakeReplyBehaviour
  | FakeErrorBehaviour
  | FakeStreamErrorBehaviour
  | FakeDisconnectBehaviour
  | FakeHangBehaviour
  | FakeGarbageBehaviour;

export interface RecordedRequest {
  /** 1-based arrival number, counted over the server's whole life. */
  seq: number;
  method: string;
  /** The path without the query string. */
  path: string;
  query: Readonly<Record<string, string>>;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
  receivedAt: number;
  /** The behaviour kind that answered, or undefined when the fake answered on its own (auth, validation, 404). */
  behaviour: FakeBehaviour['kind'] | undefined;
  /** The HTTP status sent, once headers are out. */
  status: number | undefined;
  /** True once the response was fully written. */
  completed: boolean;
  /** True when the client closed the connection before the response was complete. */
  aborted: boolean;
}

export interface FakeProviderOptions {
  kind: FakeProviderKind;
  /** 0 or absent: a free port. */
  port?: number;
  host?: string;
  /** The only key accepted. Absent: any non-empty key is accepted (a missing key is still rejected). */
  apiKey?: string;
  /** Models (Azure: deployment names) that exist; others get the provider's 404. Defaults per kind. */
  models?: readonly string[];
  /** Azure api-version values accepted; defaults to `AZURE_API_VERSIONS`. */
  apiVersions?: readonly string[];
  /** Requests kept in `requests` (default 200; 0 records nothing, for benchmarks). */
  maxRecorded?: number;
}

export interface FakeProviderStats {
  requests: number;
  aborted: number;
  /** Responses still being written (including hanging ones). */
  active: number;
}

export interface FakeProvider {
  readonly kind: FakeProviderKind;
  /** The origin, e.g. `http://127.0.0.1:40123` (OpenAI clients want `${url}/v1`). */
  readonly url: string;
  readonly port: number;
  /** The last `maxRecorded` requests, oldest first (a copy; entries keep updating, e.g. `aborted`). */
  readonly requests: readonly RecordedRequest[];
  readonly stats: FakeProviderStats;
  /** Queue one-shot behaviours, used in order by the next model calls (chat, messages, generate, embeddings). */
  script(...behaviours: FakeBehaviour[]): void;
  /** The behaviour used when the queue is empty (initially a deterministic reply). */
  setDefault(behaviour: FakeBehaviour): void;
  /** Clear the queue, the default behaviour and the recorded requests. */
  reset(): void;
  /** Resolve with the first request (recorded or future) matching the predicate; reject after timeoutMs. */
  waitFor(predicate: (request: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Resolve when a request is seen aborted by its client. */
  waitForAbort(timeoutMs?: number): Promise<RecordedRequest>;
  close(): Promise<void>;
}

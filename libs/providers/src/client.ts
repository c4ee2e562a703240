import type { Cancellation } from './cancellation.js';
import type {
  ChatRequest,
  ChatResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  StreamEvent,
} from './canonical.js';

export type ProviderKind = 'openai' | 'azure' | 'anthropic' | 'gemini' | 'openai-compatible' | 'local';

/** A configured provider account: where it is and how to authenticate. */
export interface ProviderEndpoint {
  /** The name in configuration, e.g. `openai` or `my-vllm`. */
  name: string;
  kind: ProviderKind;
  baseUrl?: string;
  apiKey?: string;
  /** Azure OpenAI `api-version`. */
  apiVersion?: string;
  headers?: Record<string, string>;
}

export interface UpstreamCall<R> {
  request: R;
  /** The provider's model (for Azure: the deployment name). */
  model: string;
  signal: AbortSignal;
  /**
   * The same cancellation as `signal`, for a client that can do without the AbortSignal: the caller
   * may then make `signal` a getter that is never read (see `LazyAbort`).
   */
  cancel?: Cancellation;
}

/** One provider, spoken to in its own format. Failures are thrown as `UpstreamFailure`. */
export interface ProviderClient {
  readonly endpoint: ProviderEndpoint;
  chat(call: UpstreamCall<ChatRequest>): Promise<ChatResponse>;
  /** Upstream errors before the first event surface from the first `next()`, so callers can still fall back. */
  chatStream(call: UpstreamCall<ChatRequest>): AsyncGenerator<StreamEvent, void, undefined>;
  embeddings(call: UpstreamCall<EmbeddingsRequest>): Promise<EmbeddingsResponse>;
  close(): Promise<void>;
}

export type FailureKind = 'http' | 'timeout' | 'connection' | 'bad_response' | 'aborted';

/** Why one attempt at one deployment failed; routing decides from it whether to retry or fall back. */
export class UpstreamFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
    readonly providerType?: string,
  ) {
    super(message);
    this.name = 'UpstreamFailure';
  }

  /** 429, 5xx (incl. Anthropic's 529), timeouts and broken connections are worth another try. */
  get retryable(): boolean {
    if (this.kind === 'timeout' || this.kind === 'connection' || this.kind === 'bad_response') return true;
    if (this.kind === 'aborted') return false;
    const s = this.status ?? 0;
    return s === 408 || s === 409 || s === 429 || s >= 500;
  }

  /** 401/403 from a provider mean our credentials for that deployment are wrong: another may work. */
  get fallbackable(): boolean {
    return this.retryable || this.status === 401 || this.status === 403 || this.status === 404;
  }
}

/**
 * The request cannot be expressed in this provider's format (a field or feature it does not take, e.g.
 * an image type Anthropic refuses). Raised before anything is sent: it is the caller's request, not the
 * provider, that is at fault, so routing neither retries it nor counts it against the deployment.
 */
export class UnsupportedRequest extends Error {
  constructor(
    /** The provider as configured, e.g. `provider "anthropic"`. */
    readonly provider: string,
    message: string,
    /** The canonical request field at fault, when the codec named one. */
    readonly param?: string,
  ) {
    super(message);
    this.name = 'UnsupportedRequest';
  }
}

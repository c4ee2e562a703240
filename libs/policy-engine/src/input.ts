/**
 * What a policy condition can see. Field names are the CEL names (snake_case) so a path in a
 * decision's explanation, a condition and this type all use one vocabulary.
 */

/** Signals a condition may read as `signals.<name>`; a signal the caller did not supply reads as 0. */
export const SIGNAL_NAMES = [
  'spend_per_minute',
  'tokens_per_minute',
  'requests_per_minute',
  'repeated_prompts',
  'error_rate',
  'tool_call_depth',
  'job_duration_s',
  'baseline_ratio',
] as const;
export type SignalName = (typeof SIGNAL_NAMES)[number];
export type SignalValues = Readonly<Partial<Record<SignalName, number>>>;

/**
 * The subjects a request's signals are also kept for, read as `signals.<scope>.<name>`: its job, its
 * session and its key. A scope the request does not belong to is absent (its signals read as 0 and
 * `has(signals.<scope>)` is false); `signals.<name>` is the most specific one (job, else session, else key).
 */
export const SIGNAL_SCOPES = ['job', 'session', 'key'] as const;
export type SignalScope = (typeof SIGNAL_SCOPES)[number];

export type SignalInput = SignalValues & { readonly [S in SignalScope]?: SignalValues };

export interface RequestFacts {
  readonly model?: string;
  readonly provider?: string;
  /** Id (never the secret) of the API key the request presented. */
  readonly key?: string;
  readonly project?: string;
  readonly job?: string;
  readonly session?: string;
  readonly region?: string;
  readonly estimated_tokens?: number;
  /**
   * USD: the worst-case estimate made before the call. What the answer actually cost is
   * `response.cost`; `request.actual_tokens` is derived from the response (see ResponseFacts).
   */
  readonly cost?: number;
  readonly max_tokens?: number;
  readonly stream?: boolean;
  readonly tools_count?: number;
  /** Header names are expected lower-case, as HTTP/2 and Node deliver them. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface CallerFacts {
  readonly key_id?: string;
  readonly owner?: string;
  readonly team?: string;
  readonly role?: string;
}

export interface BudgetFacts {
  readonly remaining: number;
  readonly limit: number;
}

/**
 * When a rule is evaluated: before the call (every fact but the answer's), or after the answer, when
 * its condition reads what only the answer tells (`response.*`, `request.actual_tokens`).
 */
export const PHASES = ['pre_call', 'post_call'] as const;
export type Phase = (typeof PHASES)[number];

/** How the call ended: answered in full, failed midway, or the caller left (partial usage). */
export const RESPONSE_STATUSES = ['completed', 'failed', 'cancelled'] as const;
export type ResponseStatus = (typeof RESPONSE_STATUSES)[number];

/** What the answer used and cost; known only after the call (post-call rules read it). */
export interface ResponseFacts {
  readonly input_tokens?: number;
  readonly output_tokens?: number;
  /** Of input_tokens, those served from the provider's prompt cache. */
  readonly cached_input_tokens?: number;
  /** USD, at the deployment's prices for the actual usage. */
  readonly cost?: number;
  readonly status?: ResponseStatus;
  /** The provider's reason, normalized: `stop`, `length`, `tool_calls`, `content_filter`, `error`; "" when none came. */
  readonly finish_reason?: string;
  /** The provider reported no usage (e.g. a stream cut short): the tokens are the gateway's estimate. */
  readonly usage_estimated?: boolean;
}

export interface EvaluationInput {
  readonly request: RequestFacts;
  /** Present after the call only; `request.actual_tokens` is its input plus output tokens. */
  readonly response?: ResponseFacts;
  readonly caller?: CallerFacts;
  readonly signals?: SignalInput;
  /** Absent when no budget applies: `budget.remaining` and `budget.limit` then read as +Infinity. */
  readonly budget?: BudgetFacts;
  /** Epoch milliseconds; required only by conditions that read `time.*` (the engine never reads a clock). */
  readonly now?: number;
}

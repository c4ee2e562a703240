/**
 * Stable error codes. Clients and dashboards key on these, so a code is never renamed; add new ones.
 */
export type ErrorCode =
  | 'invalid_json'
  | 'invalid_utf8'
  | 'invalid_request'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'missing_api_key'
  | 'invalid_api_key'
  | 'key_revoked'
  | 'key_expired'
  | 'key_suspended'
  | 'model_not_allowed'
  | 'forbidden'
  | 'model_not_found'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'budget_exceeded'
  | 'policy_blocked'
  | 'upstream_error'
  | 'upstream_timeout'
  | 'upstream_bad_response'
  | 'no_deployment_available'
  | 'unavailable'
  | 'internal';

export interface AppErrorOptions {
  /** The request field at fault, e.g. `messages[0].content`. */
  param?: string;
  /** Seconds a client should wait before retrying (429 and 503). */
  retryAfterSeconds?: number;
  /** Extra public details; never secrets or internals. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly param: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.param = options.param;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}

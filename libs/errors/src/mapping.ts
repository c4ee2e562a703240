import { AppError, type ErrorCode } from './app-error.js';

interface CodeInfo {
  http: number;
  /** gRPC status number (see grpc.status). */
  grpc: number;
  openaiType: string;
  anthropicType: string;
  /** google.rpc.Code name used by the Gemini API. */
  geminiStatus: string;
}

const GRPC = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const INVALID = {
  http: 400,
  grpc: GRPC.INVALID_ARGUMENT,
  openaiType: 'invalid_request_error',
  anthropicType: 'invalid_request_error',
  geminiStatus: 'INVALID_ARGUMENT',
};
const AUTH = {
  http: 401,
  grpc: GRPC.UNAUTHENTICATED,
  openaiType: 'authentication_error',
  anthropicType: 'authentication_error',
  geminiStatus: 'UNAUTHENTICATED',
};
const PERMISSION = {
  http: 403,
  grpc: GRPC.PERMISSION_DENIED,
  openaiType: 'permission_error',
  anthropicType: 'permission_error',
  geminiStatus: 'PERMISSION_DENIED',
};
const NOT_FOUND = {
  http: 404,
  grpc: GRPC.NOT_FOUND,
  openaiType: 'invalid_request_error',
  anthropicType: 'not_found_error',
  geminiStatus: 'NOT_FOUND',
};
const LIMIT = {
  http: 429,
  grpc: GRPC.RESOURCE_EXHAUSTED,
  openaiType: 'rate_limit_error',
  anthropicType: 'rate_limit_error',
  geminiStatus: 'RESOURCE_EXHAUSTED',
};
const UPSTREAM = {
  http: 502,
  grpc: GRPC.UNAVAILABLE,
  openaiType: 'api_error',
  anthropicType: 'api_error',
  geminiStatus: 'UNAVAILABLE',
};

const CODES: Record<ErrorCode, CodeInfo> = {
  invalid_json: INVALID,
  invalid_utf8: INVALID,
  invalid_request: INVALID,
  body_too_large: { ...INVALID, http: 413, anthropicType: 'request_too_large' },
  unsupported_media_type: { ...INVALID, http: 415 },
  missing_api_key: AUTH,
  invalid_api_key: AUTH,
  key_revoked: AUTH,
  key_expired: AUTH,
  // The caller is known, and refused until an admin resumes the key: permission, not authentication.
  key_suspended: PERMISSION,
  model_not_allowed: PERMISSION,
  forbidden: PERMISSION,
  policy_blocked: PERMISSION,
  model_not_found: NOT_FOUND,
  not_found: NOT_FOUND,
  // Every conflict is with the current state (already enforced, no longer pending, revoked), never a
  // duplicate create: gRPC's FAILED_PRECONDITION, not ALREADY_EXISTS.
  conflict: { ...INVALID, http: 409, grpc: GRPC.FAILED_PRECONDITION, geminiStatus: 'ALREADY_EXISTS' },
  rate_limited: LIMIT,
  budget_exceeded: LIMIT,
  upstream_error: UPSTREAM,
  upstream_bad_response: UPSTREAM,
  upstream_timeout: {
    ...UPSTREAM,
    http: 504,
    grpc: GRPC.DEADLINE_EXCEEDED,
    geminiStatus: 'DEADLINE_EXCEEDED',
  },
  no_deployment_available: { ...UPSTREAM, http: 503, anthropicType: 'overloaded_error' },
  unavailable: { ...UPSTREAM, http: 503, anthropicType: 'overloaded_error' },
  internal: {
    http: 500,
    grpc: GRPC.INTERNAL,
    openaiType: 'server_error',
    anthropicType: 'api_error',
    geminiStatus: 'INTERNAL',
  },
};

/** Anything that is not an AppError is an internal fault: its message is never shown to a caller. */
function normalize(error: unknown): AppError {
  if (error instanceof AppError) return error;
  return new AppError('internal', 'Internal error. Retry later; if it persists, report the request id.');
}

export function httpStatusOf(error: unknown): number {
  return CODES[normalize(error).code].http;
}

/** Response headers an error calls for: `retry-after` when the caller should wait and retry (429, 503). */
export function errorHeaders(error: unknown): Record<string, string> {
  const seconds = normalize(error).retryAfterSeconds;
  return seconds === undefined ? {} : { 'retry-after': String(seconds) };
}

export function grpcStatusOf(error: unknown): number {
  return CODES[normalize(error).code].grpc;
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export function toOpenAIError(error: unknown): OpenAIErrorBody {
  const e = normalize(error);
  return {
    error: { message: e.message, type: CODES[e.code].openaiType, param: e.param ?? null, code: e.code },
  };
}

/** An admin API's error response (OpenAI error shape): status, headers (`retry-after`) and body. */
export function toAdminHttpError(error: unknown): {
  status: number;
  headers: Record<string, string>;
  body: OpenAIErrorBody;
} {
  return { status: httpStatusOf(error), headers: errorHeaders(error), body: toOpenAIError(error) };
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
}

export function toAnthropicError(error: unknown): AnthropicErrorBody {
  const e = normalize(error);
  return { type: 'error', error: { type: CODES[e.code].anthropicType, message: e.message } };
}

export interface GeminiErrorBody {
  error: { code: number; message: string; status: string };
}

export function toGeminiError(error: unknown): GeminiErrorBody {
  const e = normalize(error);
  const info = CODES[e.code];
  return { error: { code: info.http, message: e.message, status: info.geminiStatus } };
}

import {
  AppError,
  httpStatusOf,
  isAppError,
  toAnthropicError,
  toGeminiError,
  toOpenAIError,
} from '@flowloom/errors';
import type { FastifyReply } from 'fastify';

export type ErrorFormat = 'openai' | 'anthropic' | 'gemini' | 'admin';

/** Fastify's own errors (parsing, limits, media types) in our stable codes. */
export function fromFastifyError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const e = error as { code?: string; statusCode?: number; message?: string; validation?: unknown };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(
        'body_too_large',
        'The request body is larger than this gateway accepts (FLOWLOOM_MAX_BODY_BYTES).',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid_json', 'The request body is empty; send a JSON object.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type', 'Send the request body as application/json.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('invalid_request', 'The Content-Length header does not match the body.');
    default:
      if (e.statusCode === 404) return new AppError('not_found', e.message ?? 'Not found.');
      if (e.validation) return new AppError('invalid_request', e.message ?? 'Invalid request.');
      if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500)
        return new AppError('invalid_request', e.message ?? 'Invalid request.');
      return new AppError('internal', 'Internal error. Retry later; if it persists, report the request id.', {
        cause: error,
      });
  }
}

export function errorBody(format: ErrorFormat, error: AppError): unknown {
  switch (format) {
    case 'anthropic':
      return toAnthropicError(error);
    case 'gemini':
      return toGeminiError(error);
    default:
      return toOpenAIError(error);
  }
}

export function sendError(reply: FastifyReply, format: ErrorFormat, error: unknown): FastifyReply {
  const appError = fromFastifyError(error);
  if (appError.retryAfterSeconds !== undefined)
    reply.header('retry-after', String(appError.retryAfterSeconds));
  return reply.code(httpStatusOf(appError)).type('application/json').send(errorBody(format, appError));
}

import { AppError, isAppError } from './app-error.js';

/**
 * An HTTP framework's own failures (fastify: body parsing, limits, media types, 404s, schema
 * validation) in our stable codes; anything unrecognized is internal and its message is not shown.
 */
export function fromHttpFrameworkError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const e = error as { code?: string; statusCode?: number; message?: string; validation?: unknown };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('body_too_large', 'The request body is larger than this server accepts.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid_json', 'The request body is empty; send a JSON object.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type', 'Send the request body as application/json.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('invalid_request', 'The Content-Length header does not match the body.');
    default:
      if (e.statusCode === 404) return new AppError('not_found', e.message ?? 'Not found.');
      if (e.validation || (e.statusCode && e.statusCode >= 400 && e.statusCode < 500)) {
        return new AppError('invalid_request', e.message ?? 'Invalid request.');
      }
      return new AppError('internal', 'Internal error. Retry later; if it persists, report the request id.', {
        cause: error,
      });
  }
}

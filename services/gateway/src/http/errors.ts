import {
  AppError,
  errorHeaders,
  fromHttpFrameworkError,
  httpStatusOf,
  isAppError,
  toAnthropicError,
  toGeminiError,
  toOpenAIError,
} from '@flowloom/errors';
import type { FastifyReply } from 'fastify';

export type ErrorFormat = 'openai' | 'anthropic' | 'gemini' | 'admin';

/** Fastify's own errors in our stable codes, naming the setting that bounds the body here. */
export function fromFastifyError(error: unknown, maxBodyBytes?: number): AppError {
  const appError = fromHttpFrameworkError(error);
  const limit = maxBodyBytes === undefined ? '' : ` (${maxBodyBytes.toLocaleString('en-US')} bytes)`;
  return appError.code === 'body_too_large' && !isAppError(error)
    ? new AppError(
        'body_too_large',
        `The request body is larger than this gateway accepts${limit}: send less, or raise FLOWLOOM_MAX_BODY_BYTES.`,
      )
    : appError;
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
  return reply
    .code(httpStatusOf(appError))
    .headers(errorHeaders(appError))
    .type('application/json')
    .send(errorBody(format, appError));
}

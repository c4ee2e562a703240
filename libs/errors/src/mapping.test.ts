import { describe, expect, it } from 'vitest';
import { AppError } from './app-error.js';
import { grpcStatusOf, httpStatusOf, toAnthropicError, toOpenAIError } from './mapping.js';

describe('error mapping', () => {
  it('when a client error is mapped, then it is never a 500', () => {
    const codes = [
      'invalid_json',
      'body_too_large',
      'invalid_api_key',
      'model_not_found',
      'rate_limited',
    ] as const;
    for (const code of codes) expect(httpStatusOf(new AppError(code, 'x'))).toBeLessThan(500);
  });

  it('when an unknown error is mapped, then its message is hidden', () => {
    const body = toOpenAIError(new Error('connection string postgres://user:secret@db'));
    expect(body.error.code).toBe('internal');
    expect(JSON.stringify(body)).not.toContain('secret');
    expect(httpStatusOf(new Error('x'))).toBe(500);
  });

  it('when an error is rendered for each client format, then each has its documented shape', () => {
    const error = new AppError('body_too_large', 'Body too large', { param: 'body' });
    expect(toOpenAIError(error)).toEqual({
      error: {
        message: 'Body too large',
        type: 'invalid_request_error',
        param: 'body',
        code: 'body_too_large',
      },
    });
    expect(toAnthropicError(error)).toEqual({
      type: 'error',
      error: { type: 'request_too_large', message: 'Body too large' },
    });
    expect(httpStatusOf(error)).toBe(413);
    expect(grpcStatusOf(new AppError('invalid_api_key', 'no'))).toBe(16);
  });
});

import { describe, expect, it } from 'vitest';
import { AppError } from './app-error.js';
import { parseInput } from './parse-input.js';

/** A schema in the shape zod's safeParse answers: a positive number at `limit`. */
const limitSchema = {
  safeParse(value: unknown) {
    const limit = (value as { limit?: unknown }).limit;
    return typeof limit === 'number' && limit > 0
      ? { success: true as const, data: { limit } }
      : {
          success: false as const,
          error: { issues: [{ path: ['query', 'limit'], message: 'must be a positive number' }] },
        };
  },
};

describe('parseInput', () => {
  it('when the input fits, then it answers the parsed value', () => {
    expect(parseInput(limitSchema, { limit: 5 })).toEqual({ limit: 5 });
  });

  it('when it does not, then it throws invalid_request naming the first bad field', () => {
    const thrown = (() => {
      try {
        parseInput(limitSchema, { limit: -1 });
      } catch (error) {
        return error;
      }
    })();
    expect(thrown).toBeInstanceOf(AppError);
    expect(thrown).toMatchObject({
      code: 'invalid_request',
      message: 'query.limit: must be a positive number',
      param: 'query.limit',
    });
  });

  it('when the input is absent, then it is checked as an empty object', () => {
    expect(() => parseInput(limitSchema, undefined)).toThrow(/query\.limit/);
  });
});

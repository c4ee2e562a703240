import { AppError } from '@flowloom/errors';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseOrThrow, parseRequest } from './validation.js';

const schema = z.object({
  model: z.string(),
  messages: z.array(z.object({ role: z.enum(['user', 'assistant']) })).min(1, 'at least one message, please'),
  max_tokens: z.number().int().min(1),
});

function caught(parse: () => unknown): AppError {
  try {
    parse();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected the parse to fail');
}

describe('one zod-to-field translation, two error shapes', () => {
  const cases: Array<[unknown, string, string]> = [
    [{ messages: [{ role: 'user' }], max_tokens: 1 }, 'model', 'Field required'],
    [
      { model: 'm', messages: [{ role: 'wizard' }], max_tokens: 1 },
      'messages.0.role',
      'expected one of "user", "assistant"',
    ],
    [{ model: 'm', messages: [], max_tokens: 1 }, 'messages', 'at least one message, please'],
    [{ model: 'm', messages: [{ role: 'user' }], max_tokens: 0 }, 'max_tokens', 'must be >= 1'],
  ];

  it('when a field is wrong, then the Anthropic shape leads with its path', () => {
    for (const [body, param, message] of cases) {
      const error = caught(() => parseRequest(schema, body));
      expect(error).toMatchObject({ code: 'invalid_request', param, message: `${param}: ${message}` });
    }
  });

  it('when a field is wrong, then the OpenAI shape says what was invalid, then the same path and reason', () => {
    for (const [body, param, message] of cases) {
      const error = caught(() => parseOrThrow(schema, body, 'chat completion request'));
      expect(error).toMatchObject({
        code: 'invalid_request',
        param,
        message: `Invalid chat completion request: ${param}: ${message}`,
      });
    }
  });

  it('when the body itself is wrong, then no param is named', () => {
    expect(caught(() => parseRequest(schema, 'text'))).toMatchObject({
      param: undefined,
      message: 'Request body: expected object',
    });
    expect(caught(() => parseOrThrow(schema, 'text', 'embeddings request'))).toMatchObject({
      param: undefined,
      message: 'Invalid embeddings request: expected object',
    });
  });
});

import { describe, expect, it } from 'vitest';
import { rebuildRequest } from './request-facts.js';

const base = {
  requestId: 'r1',
  keyId: 'k1',
  owner: 'alice',
  project: 'search',
  job: 'nightly',
  api: 'openai',
  operation: 'chat' as const,
  model: 'gpt-x',
  stream: false,
  latencyMs: 12,
  attempts: 1,
};

describe('rebuildRequest', () => {
  it('when a request completed, then its facts and answer are what a decision would have recorded', () => {
    const rebuilt = rebuildRequest(
      {
        kind: 'completed',
        data: {
          ...base,
          provider: 'openai',
          deployment: 'openai/gpt-x',
          providerModel: 'gpt-x-2025',
          usage: { inputTokens: 10, outputTokens: 5, cachedInputTokens: 2 },
          costUsd: 0.25,
          finishReason: 'stop',
        },
      },
      '2026-01-01T00:00:00.000Z',
    );
    expect(rebuilt).toEqual({
      requestId: 'r1',
      at: '2026-01-01T00:00:00.000Z',
      answered: true,
      input: {
        request: {
          model: 'gpt-x',
          stream: false,
          key: 'k1',
          project: 'search',
          job: 'nightly',
          provider: 'openai',
        },
        caller: { key_id: 'k1', owner: 'alice' },
        now: Date.parse('2026-01-01T00:00:00.000Z'),
        response: {
          input_tokens: 10,
          output_tokens: 5,
          cached_input_tokens: 2,
          cost: 0.25,
          status: 'completed',
          finish_reason: 'stop',
        },
      },
    });
  });

  it('when a request failed before an answer, then it has no response and was not answered', () => {
    const rebuilt = rebuildRequest(
      {
        kind: 'failed',
        data: { ...base, errorCode: 'upstream_error', errorMessage: 'boom', httpStatus: 502 },
      },
      '2026-01-01T00:00:00.000Z',
    );
    expect(rebuilt.answered).toBe(false);
    expect(rebuilt.input.response).toBeUndefined();
  });

  it('when a stream broke after it started, then the spent usage is its answer, failed', () => {
    const rebuilt = rebuildRequest(
      {
        kind: 'failed',
        data: {
          ...base,
          errorCode: 'upstream_error',
          errorMessage: 'cut',
          httpStatus: 502,
          usage: { inputTokens: 3, outputTokens: 1, cachedInputTokens: 0 },
          costUsd: 0.01,
        },
      },
      '2026-01-01T00:00:00.000Z',
    );
    expect(rebuilt.answered).toBe(true);
    expect(rebuilt.input.response).toMatchObject({ status: 'failed', finish_reason: 'error', cost: 0.01 });
  });
});

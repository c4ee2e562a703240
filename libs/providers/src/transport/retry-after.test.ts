import { describe, expect, it } from 'vitest';
import { parseRetryAfter, retryAfterFromBody } from './retry-after.js';

describe('retry-after', () => {
  it('when retry-after-ms is present, then it wins over retry-after', () => {
    expect(parseRetryAfter({ 'retry-after-ms': '250', 'retry-after': '9' })).toBe(250);
  });

  it('when retry-after is seconds or an HTTP date, then it becomes milliseconds', () => {
    expect(parseRetryAfter({ 'retry-after': '2' })).toBe(2000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }, now)).toBe(5000);
    expect(parseRetryAfter({ 'retry-after': 'soon' })).toBeUndefined();
    expect(parseRetryAfter({})).toBeUndefined();
  });

  it('when a Gemini error carries RetryInfo, then its delay is read from the body', () => {
    const body = {
      error: {
        code: 429,
        status: 'RESOURCE_EXHAUSTED',
        details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1.5s' }],
      },
    };
    expect(retryAfterFromBody(body)).toBe(1500);
    expect(retryAfterFromBody({ error: { details: [{ '@type': 'x', retryDelay: '3s' }] } })).toBeUndefined();
    expect(retryAfterFromBody('text')).toBeUndefined();
  });
});

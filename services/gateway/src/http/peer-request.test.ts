import { describe, expect, it } from 'vitest';
import { endToEndHeaders, forwardablePath, forwardedRequestHeaders } from './peer-request.js';

describe('forwardablePath', () => {
  it('when the target is a plain path with a query, then it passes unchanged (query included, encoded text kept)', () => {
    expect(forwardablePath('/api/v1/audit/entries?q=a%2Fb&limit=5')).toEqual({
      path: '/api/v1/audit/entries?q=a%2Fb&limit=5',
    });
  });

  it.each([
    ['http://evil.example/api/v1/audit/x', 'single /'],
    ['//evil.example/api/v1/audit/x', 'single /'],
    ['/api/v1/audit/../keys', '. or ..'],
    ['/api/v1/audit/%2E%2e/keys', '. or ..'],
    ['/api/v1/audit/./x', '. or ..'],
    ['/api/v1/audit/a%2fb', 'encoded slashes'],
    ['/api/v1/audit/a%5cb', 'encoded slashes'],
    ['/api/v1/audit/%zz', 'percent-encoding'],
  ])('when the target is %s, then it is refused (%s)', (target, reason) => {
    const result = forwardablePath(target);
    expect(result).toHaveProperty('refused');
    expect('refused' in result && result.refused).toContain(reason);
  });
});

describe('forwarded headers', () => {
  it('when a request is forwarded, then credentials pass unchanged, hop-by-hop headers and those named by Connection are dropped, and the x-forwarded-* headers say where it came from', () => {
    const out = forwardedRequestHeaders(
      {
        host: 'gateway.example:8080',
        authorization: 'Bearer flk_secret',
        'x-api-key': 'flk_other',
        connection: 'keep-alive, x-private-hop',
        'x-private-hop': 'drop me',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'x-forwarded-for': '203.0.113.7',
        'content-type': 'application/json',
      },
      { address: '10.0.0.2', proto: 'http' },
    );
    expect(out).toEqual({
      authorization: 'Bearer flk_secret',
      'x-api-key': 'flk_other',
      'content-type': 'application/json',
      'x-forwarded-for': '203.0.113.7, 10.0.0.2',
      'x-forwarded-host': 'gateway.example:8080',
      'x-forwarded-proto': 'http',
    });
  });

  it('when a proxy in front already said the scheme, then it is kept', () => {
    expect(endToEndHeaders({ upgrade: 'h2c', etag: '"1"' })).toEqual({ etag: '"1"' });
    expect(
      forwardedRequestHeaders({ 'x-forwarded-proto': 'https' }, { address: undefined, proto: 'http' }),
    ).toEqual({ 'x-forwarded-proto': 'https' });
  });
});

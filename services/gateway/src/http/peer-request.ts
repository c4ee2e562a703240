import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Headers that describe one connection, not the message (RFC 9110 §7.6.1): a proxy never passes them
 * on. `host` is the peer's own; the caller's goes in x-forwarded-host.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** The message's own headers: hop-by-hop ones left out, and those the Connection header names. */
export function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The headers a forwarded request carries to the peer: the caller's, credentials unchanged (the peer
 * authenticates), plus where it came from. x-forwarded-for keeps the chain the caller's proxies built.
 */
export function forwardedRequestHeaders(
  headers: IncomingHttpHeaders,
  client: { address: string | undefined; proto: 'http' | 'https' },
): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers);
  const chain = [headers['x-forwarded-for'], client.address].flat().filter((part) => part);
  if (chain.length > 0) out['x-forwarded-for'] = chain.join(', ');
  if (headers.host) out['x-forwarded-host'] = headers.host;
  out['x-forwarded-proto'] = headers['x-forwarded-proto'] ?? client.proto;
  return out;
}

/**
 * The request target passed to the peer, or why it is refused. The router already matched one of
 * the peer's prefixes on this very text; refusing dot segments and encoded slashes makes sure no
 * peer that normalizes paths can read it as another path than the one matched. The peer's address
 * is fixed by configuration: nothing in the request can change where it goes.
 */
export function forwardablePath(rawUrl: string): { path: string } | { refused: string } {
  if (!rawUrl.startsWith('/') || rawUrl.startsWith('//'))
    return { refused: 'the request target must be a path starting with a single /' };
  const query = rawUrl.indexOf('?');
  const path = query < 0 ? rawUrl : rawUrl.slice(0, query);
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return { refused: `the path segment "${segment}" is not valid percent-encoding` };
    }
    if (decoded === '.' || decoded === '..') return { refused: 'the path may not contain . or .. segments' };
    if (decoded.includes('/') || decoded.includes('\\'))
      return { refused: 'the path may not contain encoded slashes or backslashes' };
  }
  // Only printable ASCII reaches the peer (Node refuses other characters in a path anyway).
  if (!/^[\x21-\x7e]+$/.test(rawUrl))
    return { refused: 'the request target has characters that are not allowed' };
  return { path: rawUrl };
}

import { describe, expect, it } from 'vitest';
import { peerAddress } from './proto.js';

describe('peerAddress', () => {
  it('when a server call names its peer, then the address is read without the port, IPv6 included', () => {
    const of = (peer: string) => peerAddress({ getPeer: () => peer });
    expect(of('127.0.0.1:51234')).toBe('127.0.0.1');
    expect(of('::1:51234')).toBe('::1');
    expect(of('::ffff:10.1.2.3:443')).toBe('::ffff:10.1.2.3');
    expect(of('ipv4:192.0.2.7:50051')).toBe('192.0.2.7');
    expect(of('ipv6:[2001:db8::1]:50051')).toBe('2001:db8::1');
    expect(of('unknown')).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { decodeBase64, decodeHex } from './encoding.js';

describe('strict encodings', () => {
  it('when base64 is canonical, then it decodes', () => {
    expect(Buffer.from(decodeBase64('+/8=') ?? []).toString('hex')).toBe('fbff');
    expect(decodeBase64('')?.length).toBe(0);
  });

  it('when base64 has any other spelling of the same bytes, then it is refused', () => {
    for (const text of ['-_8=', '+/8', '+/8==', '+/9=', ' +/8=', '+/8=\n', '+/=8', 'AA==AA==', '+/8*']) {
      expect(decodeBase64(text), JSON.stringify(text)).toBeUndefined();
    }
  });

  it('when hex is not lowercase pairs, then it is refused', () => {
    expect(decodeHex('00ff')?.length).toBe(2);
    for (const text of ['00FF', '0', '0g', ' 00']) expect(decodeHex(text), text).toBeUndefined();
  });
});

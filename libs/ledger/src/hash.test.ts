import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { leafHash, leafHashOfText, nodeHash, toHex } from './hash.js';

const reference = (...parts: Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  return h.digest('hex');
};

describe('RFC 9162 hashing', () => {
  it('when entries of any size are hashed in turn, then each is SHA-256(0x00 ‖ entry)', () => {
    for (const size of [0, 1, 300, 65_535, 65_536, 200_000, 5]) {
      const entry = Buffer.alloc(size, size % 251);
      expect(toHex(leafHash(entry)), `size ${size}`).toBe(reference(Buffer.of(0), entry));
    }
  });

  it('when text is hashed as an entry, then it is the leaf hash of its UTF-8 bytes at any size', () => {
    const texts = [
      '',
      '{"a":1}',
      'é 😀 中文',
      'lone \ud800 surrogate \udc00',
      'x'.repeat(21_844),
      'x'.repeat(21_845),
      '😀'.repeat(20_000),
      'é'.repeat(40_000),
    ];
    for (const text of texts) {
      expect(toHex(leafHashOfText(text)), `${text.length} units`).toBe(
        reference(Buffer.of(0), Buffer.from(text, 'utf8')),
      );
    }
  });

  it('when a node is hashed, then it is SHA-256(0x01 ‖ left ‖ right) and order matters', () => {
    const left = Buffer.alloc(32, 1);
    const right = Buffer.alloc(32, 2);
    expect(toHex(nodeHash(left, right))).toBe(reference(Buffer.of(1), left, right));
    expect(toHex(nodeHash(right, left))).not.toBe(toHex(nodeHash(left, right)));
  });
});

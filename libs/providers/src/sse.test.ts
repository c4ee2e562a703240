import { describe, expect, it } from 'vitest';
import { SseParser } from './sse.js';

describe('SseParser', () => {
  it('when frames are split at every byte, including inside a multi-byte character, then messages are whole', () => {
    const text =
      'event: message_start\ndata: {"t":"héllo ✓"}\n\n: comment\ndata: a\ndata: b\n\ndata: [DONE]\n\n';
    const bytes = new TextEncoder().encode(text);
    const parser = new SseParser();
    const messages = [];
    for (const byte of bytes) messages.push(...parser.push(new Uint8Array([byte])));
    expect(messages).toEqual([
      { event: 'message_start', data: '{"t":"héllo ✓"}' },
      { event: undefined, data: 'a\nb' },
      { event: undefined, data: '[DONE]' },
    ]);
  });

  it('when lines end in CRLF or CR, then they are read the same', () => {
    const parser = new SseParser();
    expect(parser.push('data: x\r\n\r\ndata: y\r\r')).toEqual([{ event: undefined, data: 'x' }]);
    expect(parser.push('data: z\n\n')).toEqual([
      { event: undefined, data: 'y' },
      { event: undefined, data: 'z' },
    ]);
  });

  it('when the stream ends without a blank line, then end() flushes the last message', () => {
    const parser = new SseParser();
    expect(parser.push('data: partial')).toEqual([]);
    expect(parser.end()).toEqual([{ event: undefined, data: 'partial' }]);
  });
});

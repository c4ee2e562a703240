/**
 * Incremental Server-Sent Events parser (WHATWG HTML, "Interpreting an event stream"), used on
 * upstream responses. Chunks may split lines, fields and multi-byte characters anywhere.
 */
export interface SseMessage {
  /** The `event:` field, or undefined for the default `message` type. */
  event: string | undefined;
  data: string;
}

export class SseParser {
  private buffer = '';
  private event: string | undefined;
  private data: string[] = [];
  private readonly decoder = new TextDecoder('utf-8');

  /** Feeds bytes or text; returns the messages completed by this chunk. */
  push(chunk: Uint8Array | string): SseMessage[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const messages: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const newline = this.nextLineEnd(start);
      if (newline === -1) break;
      const line = this.buffer.slice(start, newline);
      start = newline + (this.buffer[newline] === '\r' && this.buffer[newline + 1] === '\n' ? 2 : 1);
      const message = this.line(line);
      if (message) messages.push(message);
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  /** Flushes a final message that was not followed by a blank line (a stream cut short). */
  end(): SseMessage[] {
    const rest = this.buffer + this.decoder.decode();
    this.buffer = '';
    const messages: SseMessage[] = [];
    if (rest.length > 0) {
      const message = this.line(rest);
      if (message) messages.push(message);
    }
    const last = this.line('');
    if (last) messages.push(last);
    return messages;
  }

  private nextLineEnd(from: number): number {
    for (let i = from; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c === 10) return i;
      // A lone CR ends a line only when we can see the next char is not LF.
      if (c === 13) return i + 1 < this.buffer.length ? i : -1;
    }
    return -1;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = undefined;
        return undefined;
      }
      const message = { event: this.event, data: this.data.join('\n') };
      this.event = undefined;
      this.data = [];
      return message;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    return undefined;
  }
}

/** Formats one SSE frame. `data` must not contain newlines (JSON.stringify output never does). */
export function sseFrame(data: string, event?: string): string {
  return event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
}

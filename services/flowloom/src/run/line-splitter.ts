/** Longest line kept whole; a longer one is cut so one runaway line cannot grow memory without bound. */
export const MAX_LINE_CHARS = 16_384;

/** Turns a stream's chunks into lines (without their `\n` or `\r\n`); `end` returns an unterminated tail. */
export class LineSplitter {
  private pending = '';

  constructor(private readonly maxChars = MAX_LINE_CHARS) {}

  push(chunk: string): string[] {
    const lines: string[] = [];
    let text = this.pending + chunk;
    for (;;) {
      const at = text.indexOf('\n');
      if (at === -1) break;
      lines.push(stripCr(text.slice(0, at)));
      text = text.slice(at + 1);
    }
    while (text.length > this.maxChars) {
      lines.push(text.slice(0, this.maxChars));
      text = text.slice(this.maxChars);
    }
    this.pending = text;
    return lines;
  }

  end(): string[] {
    const tail = this.pending;
    this.pending = '';
    return tail.length > 0 ? [stripCr(tail)] : [];
  }
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/**
 * Spots a job printing the same line over and over (a retry loop, a stuck poller). Lines are compared
 * after normalization: colours, surrounding spaces and the value of numbers are ignored, so
 * "retry 3/10 in 200ms" and "retry 4/10 in 400ms" are the same line.
 */
export interface RepeatedOutputOptions {
  /** How many times a line must appear within the window to be reported. */
  threshold: number;
  /** How many recent non-blank lines are remembered. */
  windowLines: number;
}

export interface RepeatedOutput {
  /** The line as last printed (trimmed, at most 200 characters). */
  line: string;
  /** Occurrences within the window when it was reported. */
  count: number;
  /** The count that makes a report. */
  threshold: number;
  windowLines: number;
}

export const DEFAULT_REPEATED_OUTPUT: RepeatedOutputOptions = { threshold: 20, windowLines: 200 };

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC.
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

export function normalizeLine(line: string): string {
  return line
    .replace(ANSI, '')
    .trim()
    .toLowerCase()
    .replace(/\d+(?:[.,]\d+)*/g, '#')
    .replace(/\s+/g, ' ');
}

export class RepeatedOutputDetector {
  private readonly ring: string[] = [];
  private next = 0;
  private readonly counts = new Map<string, number>();
  /** Lines reported and still in the window: reported again only after they have left it. */
  private readonly reported = new Set<string>();

  constructor(private readonly options: RepeatedOutputOptions = DEFAULT_REPEATED_OUTPUT) {
    if (options.threshold < 2) throw new Error('the repeated-output threshold must be at least 2');
    if (options.windowLines < options.threshold)
      throw new Error('the repeated-output window must hold at least threshold lines');
  }

  /** Feeds one line; returns a finding the moment a line reaches the threshold within the window. */
  push(line: string): RepeatedOutput | undefined {
    const key = normalizeLine(line);
    if (key === '' || key === '#') return undefined;
    if (this.ring.length < this.options.windowLines) this.ring.push(key);
    else {
      const evicted = this.ring[this.next]!;
      this.ring[this.next] = key;
      this.next = (this.next + 1) % this.options.windowLines;
      const left = (this.counts.get(evicted) ?? 1) - 1;
      if (left <= 0) {
        this.counts.delete(evicted);
        this.reported.delete(evicted);
      } else this.counts.set(evicted, left);
    }
    const count = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, count);
    if (count < this.options.threshold || this.reported.has(key)) return undefined;
    this.reported.add(key);
    return {
      line: clip(line.replace(ANSI, '').trim(), 200),
      count,
      threshold: this.options.threshold,
      windowLines: this.options.windowLines,
    };
  }
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

import type { ProcessUsage } from './proc-stats.js';
import { formatDuration } from './timeline.js';

/** What the live status line shows about a supervised job. */
export interface StatusSnapshot {
  job: string;
  attempt: number;
  state: 'starting' | 'running' | 'stopping' | 'waiting to restart' | 'finished';
  elapsedMs: number;
  pid?: number;
  usage?: ProcessUsage;
  /** AI requests through the job's endpoint, and how many the gateway refused. */
  requests: number;
  refused: number;
  tokens: number;
  /** Findings recorded only (shadow/canary) and interventions carried out. */
  flagged: number;
  enforced: number;
  /** The latest finding, in a few words. */
  last?: string;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  if (bytes < 1024 ** 3) return `${Math.round(bytes / 1024 / 1024)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}

/** One line, at most `width` characters: the job, its state, its process and its AI traffic. */
export function formatStatus(s: StatusSnapshot, width = 120): string {
  const parts = [
    `${s.job} #${s.attempt}`,
    s.state,
    formatDuration(s.elapsedMs),
    ...(s.pid !== undefined ? [`pid ${s.pid}`] : []),
    ...(s.usage ? [`cpu ${Math.round(s.usage.cpuPercent)}%`, `mem ${formatBytes(s.usage.rssBytes)}`] : []),
    `ai ${s.requests} req${s.refused > 0 ? ` (${s.refused} refused)` : ''}${s.tokens > 0 ? ` ${s.tokens} tok` : ''}`,
    `policy ${s.flagged} flagged ${s.enforced} enforced`,
    ...(s.last ? [`last: ${s.last}`] : []),
  ];
  const text = parts.join(' · ');
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
}

/** Where a supervisor writes: the job's own output, its notices, and the status line. */
export interface SupervisorConsole {
  output(stream: 'stdout' | 'stderr', line: string): void;
  notice(text: string): void;
  status(snapshot: StatusSnapshot): void;
  /** Removes the status line (before the timeline). */
  close(): void;
}

interface TerminalStream {
  write(text: string): unknown;
  columns?: number;
}

/**
 * On a terminal: the job's lines scroll by and one status line stays at the bottom of stderr,
 * redrawn in place (cleared before each line of output, then drawn again).
 */
export class TtyConsole implements SupervisorConsole {
  private current = '';

  constructor(
    private readonly stdout: TerminalStream,
    private readonly stderr: TerminalStream,
  ) {}

  output(stream: 'stdout' | 'stderr', line: string): void {
    this.clear();
    (stream === 'stdout' ? this.stdout : this.stderr).write(`${line}\n`);
    this.draw();
  }

  notice(text: string): void {
    this.clear();
    this.stderr.write(`\x1b[1mflowloom\x1b[0m ${text}\n`);
    this.draw();
  }

  status(snapshot: StatusSnapshot): void {
    this.current = formatStatus(snapshot, Math.max(20, (this.stderr.columns || 120) - 1));
    this.clear();
    this.draw();
  }

  close(): void {
    this.clear();
    this.current = '';
  }

  private clear(): void {
    if (this.current) this.stderr.write('\r\x1b[2K');
  }

  private draw(): void {
    if (this.current) this.stderr.write(`\x1b[2m${this.current}\x1b[0m`);
  }
}

/** Off a terminal (CI logs, pipes): plain lines; the status at most every `everyMs`, and only when it changed. */
export class PlainConsole implements SupervisorConsole {
  private lastStatusAt = Number.NEGATIVE_INFINITY;
  private lastStatus = '';

  constructor(
    private readonly write: { out(text: string): void; err(text: string): void },
    private readonly everyMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  output(stream: 'stdout' | 'stderr', line: string): void {
    if (stream === 'stdout') this.write.out(line);
    else this.write.err(line);
  }

  notice(text: string): void {
    this.write.err(`flowloom: ${text}`);
  }

  status(snapshot: StatusSnapshot): void {
    const now = this.now();
    const text = formatStatus({ ...snapshot, elapsedMs: 0 }, 400);
    if (now - this.lastStatusAt < this.everyMs || text === this.lastStatus) return;
    this.lastStatusAt = now;
    this.lastStatus = text;
    this.write.err(`flowloom: status ${formatStatus(snapshot, 400)}`);
  }

  close(): void {}
}

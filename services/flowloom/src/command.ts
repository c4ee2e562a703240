/** One CLI command: its help text and what it does. Exit code 0 on success. */
export interface Command {
  name: string;
  summary: string;
  /** Full help: usage line, options and examples. */
  help: string;
  run(args: string[], io: Io): Promise<number>;
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
}

export class UsageError extends Error {}

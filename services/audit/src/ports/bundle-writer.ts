/** Where an evidence bundle's files are written. */
export interface BundleWriter {
  /** Starts a file, replacing nothing: fails when it exists. */
  writeFile(name: string, content: string): Promise<void>;
  /** Appends lines (each gets a trailing LF) to a file being streamed. */
  appendLines(name: string, lines: readonly string[]): Promise<void>;
  close(): Promise<void>;
  readonly location: string;
}

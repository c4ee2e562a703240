/** Where the checkpoint signing key lives (a file with restricted permissions by default). */
export interface SigningKeyStore {
  /** The `PRIVATE+KEY+…` text, or undefined when none was created yet. */
  load(): Promise<string | undefined>;
  save(signerKey: string): Promise<void>;
  /** Where it is, for messages (never the key itself). */
  readonly location: string;
}

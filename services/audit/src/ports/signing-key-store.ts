/** Where the checkpoint signing key lives (a file with restricted permissions by default). */
export interface SigningKeyStore {
  /** The `PRIVATE+KEY+…` text, or undefined when none was created yet. */
  load(): Promise<string | undefined>;
  save(signerKey: string): Promise<void>;
  /**
   * False when the key is provided from outside and shared by replicas (a Kubernetes Secret):
   * FlowLoom must then neither create nor replace it.
   */
  readonly writable: boolean;
  /** Where it is, for messages (never the key itself). */
  readonly location: string;
}

/** A place outside the database that receives every signed checkpoint (a folder, a witness URL). */
export interface CheckpointSink {
  readonly name: string;
  publish(checkpoint: { treeSize: number; keyId: string; note: string }): Promise<void>;
}

import type { PolicyBundle } from '@flowloom/contracts';

/**
 * Where the gateway's active policy bundle comes from: the policy service in this process (a direct
 * subscription), its gRPC bundle stream, or a policy file. The gateway evaluates the bundle inline;
 * a source only delivers new ones.
 */
export interface PolicySource {
  /** Calls `onBundle` with the current bundle when there is one, then with every newer one. Returns an unsubscribe. */
  subscribe(onBundle: (bundle: PolicyBundle) => void): () => void;
  close?(): Promise<void>;
}

import type { PolicyBundle } from '@flowloom/contracts';

/**
 * Where the gateway's active policy bundle comes from: the policy service in this process (a direct
 * subscription), its gRPC bundle stream, or a policy file. The gateway evaluates the bundle inline;
 * a source only delivers new ones.
 */
export interface PolicySource {
  /** Calls `onBundle` with the current bundle when there is one, then with every newer one. Returns an unsubscribe. */
  subscribe(onBundle: (bundle: PolicyBundle) => void): () => void;
  /**
   * A stored version by id or unique prefix, active or not: a job policy bound to a key
   * (`flowloom run --policy`). Throws an AppError (not_found, invalid_request, unavailable). Absent
   * when there is no policy service to ask (a policy file): keys cannot be bound to a job policy then.
   */
  fetchVersion?(idOrPrefix: string): Promise<FetchedPolicyVersion>;
  /** For a remote source: whether it is connected, and how old what is in force may be. */
  status?(): PolicySourceStatus;
  close?(): Promise<void>;
}

/** A stored policy version, as the gateway compiles it (and checks it against its id). */
export interface FetchedPolicyVersion {
  name: string;
  version: string;
  document: unknown;
}

export interface PolicySourceStatus {
  /** Where bundles come from, for messages. */
  source: string;
  /** Receiving: the bundle in force is the current one. */
  connected: boolean;
  /** When `connected` last changed (epoch ms): while disconnected, changes since then are not seen. */
  since: number;
  /** Why it is disconnected. */
  problem?: string;
  /** The revision in force, and when it was last delivered. */
  revision?: number;
  receivedAt?: number;
}

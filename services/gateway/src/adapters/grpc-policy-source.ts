import { bundleFromWire, type PolicyBundle, type PolicyBundleWire } from '@flowloom/contracts';
import * as grpc from '@grpc/grpc-js';
import { loadService, PROTO_ROOT } from '../grpc/load.js';
import type { PolicySource } from '../ports/policy-source.js';

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;

/**
 * Streams bundles from the policy service (`flowloom.policy.v1.PolicyDistribution/WatchBundle`) and
 * reconnects with backoff when the stream breaks. The last bundle stays in force meanwhile. Each call
 * carries the gateway's service credential (an admin key) in `authorization`.
 */
export class GrpcPolicySource implements PolicySource {
  private readonly client: grpc.Client & {
    watchBundle(
      request: { knownRevision: number; gateway: string },
      metadata: grpc.Metadata,
    ): grpc.ClientReadableStream<PolicyBundleWire>;
  };
  private readonly listeners = new Set<(bundle: PolicyBundle) => void>();
  private latest: PolicyBundle | undefined;
  private call: grpc.ClientReadableStream<PolicyBundleWire> | undefined;
  private retryMs = RETRY_MIN_MS;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Settles the wait for the first bundle: true when one arrived, false when the credential was refused. */
  private settleFirst: ((received: boolean) => void) | undefined;
  private readonly first: Promise<boolean>;
  private readonly metadata = new grpc.Metadata();

  constructor(
    address: string,
    private readonly name: string,
    serviceKey: string,
    private readonly onProblem: (message: string) => void,
  ) {
    this.metadata.set('authorization', `Bearer ${serviceKey}`);
    const Service = loadService(`${PROTO_ROOT}/flowloom/policy/v1/policy.proto`, [
      'flowloom',
      'policy',
      'v1',
      'PolicyDistribution',
    ]);
    this.client = new Service(
      address,
      grpc.credentials.createInsecure(),
    ) as unknown as GrpcPolicySource['client'];
    this.first = new Promise((resolve) => {
      this.settleFirst = resolve;
    });
    this.connect();
  }

  /**
   * Resolves true when the first bundle arrived; false after `timeoutMs`, or at once when the policy
   * service refused the credential (waiting would not change that).
   */
  async ready(timeoutMs: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const result = await Promise.race([this.first, timeout]);
    clearTimeout(timer);
    return result;
  }

  private connect(): void {
    if (this.closed) return;
    const call = this.client.watchBundle(
      { knownRevision: this.latest?.revision ?? -1, gateway: this.name },
      this.metadata,
    );
    this.call = call;
    call.on('data', (wire: PolicyBundleWire) => {
      this.retryMs = RETRY_MIN_MS;
      let bundle: PolicyBundle;
      try {
        bundle = bundleFromWire(wire);
      } catch (error) {
        this.onProblem(`policy bundle ignored: ${(error as Error).message}`);
        return;
      }
      if (this.latest && bundle.revision < this.latest.revision) return;
      this.latest = bundle;
      this.settleFirst?.(true);
      for (const listener of this.listeners) listener(bundle);
    });
    call.on('error', (error: grpc.ServiceError) => {
      if (this.closed || error.code === grpc.status.CANCELLED) return;
      // A refused credential is a configuration problem: say which setting fixes it. Keep retrying,
      // since the key may be created (or its table migrated) after this gateway started.
      const refused =
        error.code === grpc.status.UNAUTHENTICATED || error.code === grpc.status.PERMISSION_DENIED;
      this.onProblem(
        `policy bundle stream: ${error.details || error.message}${refused ? ' (set FLOWLOOM_POLICY_SERVICE_KEY, or FLOWLOOM_ADMIN_KEY, to an admin key the policy service knows)' : ''}; retrying in ${this.retryMs} ms`,
      );
      if (refused) this.settleFirst?.(false);
      this.retry();
    });
    call.on('end', () => {
      if (!this.closed && this.call === call) this.retry();
    });
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.call = undefined;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, this.retryMs);
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  subscribe(onBundle: (bundle: PolicyBundle) => void): () => void {
    this.listeners.add(onBundle);
    if (this.latest) onBundle(this.latest);
    return () => this.listeners.delete(onBundle);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.call?.cancel();
    this.client.close();
    this.listeners.clear();
  }
}

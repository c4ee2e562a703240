import { bundleFromWire, type PolicyBundle, type PolicyBundleWire } from '@flowloom/contracts';
import * as grpc from '@grpc/grpc-js';
import { loadService, PROTO_ROOT } from '../grpc/load.js';
import type { PolicySource } from '../ports/policy-source.js';

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;

/**
 * Streams bundles from the policy service (`flowloom.policy.v1.PolicyDistribution/WatchBundle`) and
 * reconnects with backoff when the stream breaks. The last bundle stays in force meanwhile.
 */
export class GrpcPolicySource implements PolicySource {
  private readonly client: grpc.Client & {
    watchBundle(request: {
      knownRevision: number;
      gateway: string;
    }): grpc.ClientReadableStream<PolicyBundleWire>;
  };
  private readonly listeners = new Set<(bundle: PolicyBundle) => void>();
  private latest: PolicyBundle | undefined;
  private call: grpc.ClientReadableStream<PolicyBundleWire> | undefined;
  private retryMs = RETRY_MIN_MS;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private firstBundle: (() => void) | undefined;
  private readonly first: Promise<void>;

  constructor(
    address: string,
    private readonly name: string,
    private readonly onProblem: (message: string) => void,
  ) {
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
      this.firstBundle = resolve;
    });
    this.connect();
  }

  /** Resolves when the first bundle arrived, or after `timeoutMs` (false then). */
  async ready(timeoutMs: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const result = await Promise.race([this.first.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  private connect(): void {
    if (this.closed) return;
    const call = this.client.watchBundle({ knownRevision: this.latest?.revision ?? -1, gateway: this.name });
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
      this.firstBundle?.();
      for (const listener of this.listeners) listener(bundle);
    });
    call.on('error', (error: grpc.ServiceError) => {
      if (this.closed || error.code === grpc.status.CANCELLED) return;
      this.onProblem(
        `policy bundle stream: ${error.details || error.message}; retrying in ${this.retryMs} ms`,
      );
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

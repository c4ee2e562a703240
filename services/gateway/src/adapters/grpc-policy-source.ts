import { bundleFromWire, type PolicyBundle, type PolicyBundleWire } from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import * as grpc from '@grpc/grpc-js';
import { retryDelayMs } from '../domain/backoff.js';
import { loadService, PROTO_ROOT } from '../grpc/load.js';
import type { FetchedPolicyVersion, PolicySource, PolicySourceStatus } from '../ports/policy-source.js';

interface BundleVersionDocumentWire {
  name: string;
  version: string;
  documentJson: string;
}

type DistributionClient = grpc.Client & {
  watchBundle(
    request: { knownRevision: number; gateway: string },
    metadata: grpc.Metadata,
  ): grpc.ClientReadableStream<PolicyBundleWire>;
  getVersion(
    request: { version: string },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: BundleVersionDocumentWire) => void,
  ): grpc.ClientUnaryCall;
};

const FETCH_VERSION_DEADLINE_MS = 5_000;

export interface GrpcPolicySourceOptions {
  /** Reconnect back-off, full jitter (200 ms doubling up to 5 s by default). */
  retry?: { baseMs: number; maxMs: number };
  /** How long a new stream may take to deliver the current bundle before it is given up (5 s). */
  firstBundleDeadlineMs?: number;
  /** HTTP/2 keepalive ping interval and how long to wait for its answer (10 s, 5 s). */
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
}

/**
 * Streams bundles from the policy service (`flowloom.policy.v1.PolicyDistribution/WatchBundle`) and
 * reconnects with jittered backoff when the stream breaks. The last bundle stays in force meanwhile,
 * and `status()` says since when it may be stale. Each call carries the gateway's service credential
 * (an admin key) in `authorization`.
 *
 * A stream that is quiet for hours is normal (no policy change), so silence cannot tell a dead peer:
 * HTTP/2 keepalive pings, sent even between calls, find a policy host that vanished without closing
 * the connection (power loss, network partition) within keepalive + timeout. grpc-js servers accept
 * such pings at any rate; a proxy in between (Envoy, an ingress) must permit them too.
 */
export class GrpcPolicySource implements PolicySource {
  private client: DistributionClient;
  private readonly newClient: () => DistributionClient;
  private readonly listeners = new Set<(bundle: PolicyBundle) => void>();
  private latest: PolicyBundle | undefined;
  private receivedAt: number | undefined;
  private call: grpc.ClientReadableStream<PolicyBundleWire> | undefined;
  /** Failed attempts since a stream last delivered; the back-off grows with it. */
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** True once the current stream delivered a bundle, until it breaks. */
  private streaming = false;
  private since = Date.now();
  private problem: string | undefined;
  /** Settles the wait for the first bundle: true when one arrived, false when the credential was refused. */
  private settleFirst: ((received: boolean) => void) | undefined;
  private readonly first: Promise<boolean>;
  private readonly metadata = new grpc.Metadata();
  private readonly retry: { baseMs: number; maxMs: number };
  private readonly firstBundleDeadlineMs: number;

  constructor(
    private readonly address: string,
    private readonly name: string,
    serviceKey: string,
    private readonly onProblem: (message: string) => void,
    options: GrpcPolicySourceOptions = {},
  ) {
    this.retry = options.retry ?? { baseMs: 200, maxMs: 5_000 };
    this.firstBundleDeadlineMs = options.firstBundleDeadlineMs ?? 5_000;
    this.metadata.set('authorization', `Bearer ${serviceKey}`);
    const Service = loadService(`${PROTO_ROOT}/flowloom/policy/v1/policy.proto`, [
      'flowloom',
      'policy',
      'v1',
      'PolicyDistribution',
    ]);
    const channelOptions: grpc.ChannelOptions = {
      'grpc.keepalive_time_ms': options.keepaliveMs ?? 10_000,
      'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      // The channel's own reconnect back-off stays short: this class paces the attempts.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': this.retry.maxMs,
    };
    this.newClient = () =>
      new Service(
        address,
        grpc.credentials.createInsecure(),
        channelOptions,
      ) as unknown as DistributionClient;
    this.client = this.newClient();
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

  status(): PolicySourceStatus {
    return {
      source: `policy service at ${this.address}`,
      connected: this.streaming,
      since: this.since,
      ...(this.problem !== undefined && !this.streaming ? { problem: this.problem } : {}),
      ...(this.latest ? { revision: this.latest.revision } : {}),
      ...(this.receivedAt !== undefined ? { receivedAt: this.receivedAt } : {}),
    };
  }

  private connect(): void {
    if (this.closed) return;
    const call = this.client.watchBundle(
      { knownRevision: this.latest?.revision ?? -1, gateway: this.name },
      this.metadata,
    );
    this.call = call;
    // A stream has no deadline (it lives as long as the gateway), but its first message does: the
    // server sends the current bundle at once, so a peer that accepts the call and stays silent is
    // hung, and waiting on it would leave this gateway stale without ever noticing.
    const deadline = setTimeout(() => {
      if (this.call !== call || this.streaming) return;
      this.fail(call, `no bundle within ${this.firstBundleDeadlineMs} ms of opening the stream`);
      call.cancel();
      // The channel may sit on a connection that never completes (a host that accepts TCP and then
      // says nothing): grpc-js would wait ~20 s for it before trying another. Start on a fresh one.
      this.client.close();
      this.client = this.newClient();
    }, this.firstBundleDeadlineMs);
    call.on('data', (wire: PolicyBundleWire) => {
      if (this.call !== call) return;
      clearTimeout(deadline);
      this.failures = 0;
      if (!this.streaming) {
        this.streaming = true;
        this.since = Date.now();
        this.problem = undefined;
      }
      let bundle: PolicyBundle;
      try {
        bundle = bundleFromWire(wire);
      } catch (error) {
        this.onProblem(`policy bundle ignored: ${(error as Error).message}`);
        return;
      }
      this.receivedAt = Date.now();
      if (this.latest && bundle.revision < this.latest.revision) return;
      this.latest = bundle;
      this.settleFirst?.(true);
      for (const listener of this.listeners) listener(bundle);
    });
    call.on('error', (error: grpc.ServiceError) => {
      clearTimeout(deadline);
      if (this.closed || this.call !== call || error.code === grpc.status.CANCELLED) return;
      // A refused credential is a configuration problem: say which setting fixes it. Keep retrying,
      // since the key may be created (or its table migrated) after this gateway started.
      const refused =
        error.code === grpc.status.UNAUTHENTICATED || error.code === grpc.status.PERMISSION_DENIED;
      this.fail(
        call,
        `${error.details || error.message}${refused ? ' (set FLOWLOOM_POLICY_SERVICE_KEY, or FLOWLOOM_ADMIN_KEY, to an admin key the policy service knows)' : ''}`,
      );
      if (refused) this.settleFirst?.(false);
    });
    call.on('end', () => {
      clearTimeout(deadline);
      if (!this.closed && this.call === call) this.fail(call, 'the policy service ended the stream');
    });
  }

  /** The stream `call` broke: keep the bundle in force, note since when, and reconnect after a back-off. */
  private fail(call: grpc.ClientReadableStream<PolicyBundleWire>, problem: string): void {
    if (this.closed || this.call !== call || this.timer) return;
    this.call = undefined;
    if (this.streaming) {
      this.streaming = false;
      this.since = Date.now();
    }
    this.problem = problem;
    this.failures++;
    const wait = retryDelayMs(this.failures, this.retry, undefined);
    this.onProblem(
      `policy bundle stream from ${this.address}: ${problem}; ${this.latest ? `revision ${this.latest.revision} stays in force` : 'no policies in force yet'}; retrying in ${wait} ms`,
    );
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, wait);
  }

  /** One version (a job policy), asked of the policy service; the gateway caches it compiled. */
  fetchVersion(idOrPrefix: string): Promise<FetchedPolicyVersion> {
    return new Promise((resolve, reject) => {
      this.client.getVersion(
        { version: idOrPrefix },
        this.metadata,
        { deadline: Date.now() + FETCH_VERSION_DEADLINE_MS },
        (error, response) => {
          if (error || !response) {
            const details = error?.details || error?.message || 'no answer';
            const code =
              error?.code === grpc.status.NOT_FOUND
                ? 'not_found'
                : error?.code === grpc.status.INVALID_ARGUMENT
                  ? 'invalid_request'
                  : 'unavailable';
            reject(
              new AppError(
                code,
                code === 'unavailable'
                  ? `The policy service at ${this.address} did not give policy version ${idOrPrefix}: ${details}`
                  : details,
                { param: 'policy' },
              ),
            );
            return;
          }
          try {
            resolve({
              name: response.name,
              version: response.version,
              document: JSON.parse(response.documentJson) as unknown,
            });
          } catch (parseError) {
            reject(
              new AppError(
                'unavailable',
                `policy version ${idOrPrefix} from ${this.address} is not JSON: ${(parseError as Error).message}`,
              ),
            );
          }
        },
      );
    });
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

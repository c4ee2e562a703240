import * as grpc from '@grpc/grpc-js';
import { loadService } from './proto.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';
/** What a service needs in order to serve, e.g. its database answering; false or a throw: not serving. */
export type ServingCheck = () => boolean | Promise<boolean>;

export interface HealthOptions {
  /**
   * The gRPC services on the server by full name (`flowloom.policy.v1.PolicyAdmin`), each with its
   * check, or null for one that serves whenever the server runs.
   */
  services: Record<string, ServingCheck | null>;
  /** The server as a whole (service ""); by default it serves when every service does. */
  server?: ServingCheck;
  /** A check that has not answered by then counts as not serving (ms, default 2,000). */
  timeoutMs?: number;
  /** While a Watch is open, how often the statuses are checked again (ms, default 5,000). */
  watchIntervalMs?: number;
}

interface HealthRequest {
  service: string;
}
type WireStatus = ServingStatus | 'SERVICE_UNKNOWN';

interface Watcher {
  call: grpc.ServerWritableStream<HealthRequest, { status: WireStatus }>;
  service: string;
  sent?: WireStatus;
  /** Answers arrive out of order when a check is slow: only the latest one asked is written. */
  asked: number;
}

export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * The standard health service (grpc.health.v1.Health) for one server: Check answers with a service's
 * status now, NOT_FOUND for a service the server does not host; Watch sends the status at once and
 * again on every change (SERVICE_UNKNOWN for an unknown service, as the protocol says). Statuses are
 * asked of the checks when someone asks, never on a timer of their own, so nothing polls a database
 * unless a client watches.
 */
export class GrpcHealth {
  private readonly checks: Map<string, ServingCheck | null>;
  private readonly timeoutMs: number;
  private readonly watchIntervalMs: number;
  private readonly watchers = new Set<Watcher>();
  private readonly running = new Map<string, Promise<ServingStatus>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: HealthOptions) {
    this.checks = new Map(Object.entries(options.services));
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.watchIntervalMs = options.watchIntervalMs ?? 5_000;
  }

  /** Adds grpc.health.v1.Health to the server. */
  addTo(server: grpc.Server): void {
    const Health = loadService('grpc/health/v1/health.proto', ['grpc', 'health', 'v1', 'Health']);
    server.addService(Health.service, {
      check: (
        call: grpc.ServerUnaryCall<HealthRequest, unknown>,
        callback: grpc.sendUnaryData<{ status: ServingStatus }>,
      ) => {
        const service = call.request.service;
        void this.status(service).then((status) =>
          status === undefined
            ? callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${service}` }, null)
            : callback(null, { status }),
        );
      },
      watch: (call: grpc.ServerWritableStream<HealthRequest, { status: WireStatus }>) => {
        const watcher: Watcher = { call, service: call.request.service, asked: 0 };
        const forget = (): void => {
          this.watchers.delete(watcher);
          if (this.watchers.size === 0) this.stopTimer();
        };
        call.on('cancelled', forget);
        call.on('close', forget);
        call.on('error', forget);
        if (this.stopped) {
          call.write({ status: this.known(watcher.service) ? 'NOT_SERVING' : 'SERVICE_UNKNOWN' });
          call.end();
          return;
        }
        this.watchers.add(watcher);
        void this.refresh(watcher);
        this.startTimer();
      },
    });
  }

  /** A service's status now ("" for the server), or undefined for a service this server does not host. */
  async status(service: string): Promise<ServingStatus | undefined> {
    if (!this.known(service)) return undefined;
    if (this.stopped) return 'NOT_SERVING';
    // Concurrent callers share one run of a check.
    let running = this.running.get(service);
    if (!running) {
      running = this.evaluate(service).finally(() => this.running.delete(service));
      this.running.set(service, running);
    }
    return running;
  }

  /** Checks every watched service again now and tells watchers what changed (after a known change). */
  async refreshWatchers(): Promise<void> {
    await Promise.all([...this.watchers].map((w) => this.refresh(w)));
  }

  /**
   * From now on everything is NOT_SERVING: watchers are told, then their streams end, so that the
   * server's graceful shutdown does not wait for them. Call before shutting the server down.
   */
  shutdown(): void {
    this.stopped = true;
    this.stopTimer();
    for (const watcher of this.watchers) {
      if (!watcher.call.cancelled) {
        if (watcher.sent !== 'SERVICE_UNKNOWN') watcher.call.write({ status: 'NOT_SERVING' });
        watcher.call.end();
      }
    }
    this.watchers.clear();
  }

  private known(service: string): boolean {
    return service === '' || this.checks.has(service);
  }

  private async evaluate(service: string): Promise<ServingStatus> {
    if (service !== '')
      return (await this.passes(this.checks.get(service) ?? null)) ? 'SERVING' : 'NOT_SERVING';
    if (this.options.server) return (await this.passes(this.options.server)) ? 'SERVING' : 'NOT_SERVING';
    const all = await Promise.all([...this.checks.keys()].map((name) => this.status(name)));
    return all.every((s) => s === 'SERVING') ? 'SERVING' : 'NOT_SERVING';
  }

  private async passes(check: ServingCheck | null): Promise<boolean> {
    if (!check) return true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([Promise.resolve().then(check), late]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private async refresh(watcher: Watcher): Promise<void> {
    const asked = ++watcher.asked;
    const status: WireStatus = (await this.status(watcher.service)) ?? 'SERVICE_UNKNOWN';
    if (asked !== watcher.asked || watcher.call.cancelled || !this.watchers.has(watcher)) return;
    if (status === watcher.sent) return;
    watcher.sent = status;
    watcher.call.write({ status });
  }

  private startTimer(): void {
    if (this.timer || this.stopped) return;
    const tick = (): void => {
      void this.refreshWatchers().finally(() => {
        if (this.timer && this.watchers.size > 0) {
          this.timer = setTimeout(tick, this.watchIntervalMs);
          this.timer.unref();
        } else this.timer = undefined;
      });
    };
    this.timer = setTimeout(tick, this.watchIntervalMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

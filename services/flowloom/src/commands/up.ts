import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { type AuditService, openAudit } from '@flowloom/audit';
import { InProcessBus } from '@flowloom/bus';
import { type Config, loadConfig } from '@flowloom/config';
import { AppError } from '@flowloom/errors';
import { type AdminAuthorizer, type Gateway, policyApiDocument, startGateway } from '@flowloom/gateway';
import { startPolicyService } from '@flowloom/policy';
import { embeddedDbMemory, openDb } from '@flowloom/store';
import { createRegistry, registerEmbeddedDbGauges } from '@flowloom/telemetry';
import type { Command, Io } from '../command.js';

export const upCommand: Command = {
  name: 'up',
  summary: 'Run the whole platform in one process on embedded storage',
  help: `Usage: flowloom up [--port N] [--grpc-port N] [--host H] [--data-dir DIR]

Starts the gateway (HTTP on 127.0.0.1:8080, gRPC on 127.0.0.1:50051) with its data in ./.flowloom,
the policy service and the audit trail (its API under /api/v1/audit on the same HTTP port; its gRPC
service flowloom.audit.v1.Audit on the gRPC port + 1, or FLOWLOOM_AUDIT_GRPC_PORT).
Settings come from flowloom.yaml (FLOWLOOM_CONFIG) and FLOWLOOM_* variables; flags win over both.
Without FLOWLOOM_ADMIN_KEY, the first start that comes up prints a generated admin key, once.
Stop with Ctrl-C: in-flight requests and streams finish first, then the events still in the outbox
go into the audit trail (a long hand-over says how many are left; a second Ctrl-C stops at once,
and they go in at the next start).

Options:
  --port N        HTTP port (FLOWLOOM_HTTP_PORT)
  --grpc-port N   gRPC port (FLOWLOOM_GRPC_PORT)
  --host H        listen address (FLOWLOOM_HOST)
  --data-dir DIR  data folder (FLOWLOOM_DATA_DIR)`,
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: {
        port: { type: 'string' },
        'grpc-port': { type: 'string' },
        host: { type: 'string' },
        'data-dir': { type: 'string' },
      },
      strict: true,
    });
    const env = { ...io.env };
    if (values.port) env.FLOWLOOM_HTTP_PORT = values.port;
    if (values['grpc-port']) env.FLOWLOOM_GRPC_PORT = values['grpc-port'];
    if (values.host) env.FLOWLOOM_HOST = values.host;
    if (values['data-dir']) env.FLOWLOOM_DATA_DIR = values['data-dir'];
    const config = loadConfig({ env });
    limitHeapGrowth();
    keepGcOnMainThread();
    // A generated admin key is shown once, so only by a start that came up: the gateway generates it
    // once its ports are bound, after every other part started, so a failed start leaves none behind
    // and the next start generates and shows one.
    let adminKey: string | undefined;
    let auditGrpc = 0;
    let platform: EmbeddedPlatform;
    try {
      platform = await startEmbeddedPlatform(config, env, {
        onAdminKeyGenerated: (secret) => {
          adminKey = secret;
        },
        serveAuditGrpc: async (audit, authorizeAdmin) => {
          auditGrpc = await serveAuditGrpc(audit, config, authorizeAdmin, io);
        },
        onCloseFailure: (message) => io.err(`flowloom up: ${message}`),
      });
    } catch (error) {
      throw new Error(startFailureMessage(error, config), { cause: error });
    }
    const { gateway, audit, close } = platform;
    if (adminKey)
      io.out(
        [
          '',
          '  A bootstrap admin key was generated. It is shown only this once and stored only as a hash:',
          '',
          `    ${adminKey}`,
          '',
          '  export FLOWLOOM_API_KEY=<that key> to use the CLI and the admin API.',
          '',
        ].join('\n'),
      );
    const providers = ['local', ...Object.keys(config.providers)].join(', ');
    io.out(
      `FlowLoom is up: HTTP ${gateway.httpUrl}  gRPC ${gateway.grpcAddress}  data ${config.databaseUrl ? 'PostgreSQL' : config.dataDir}  providers: ${providers}`,
    );
    io.out(
      `Audit trail: ${audit.ledger.origin}, checkpoints signed by key ${audit.ledger.keyId}; API ${gateway.httpUrl}/api/v1/audit, gRPC ${config.host}:${auditGrpc}`,
    );
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        io.out('Shutting down: finishing in-flight requests…');
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await closeReportingDrain(close, () => gateway.outboxBacklog(), io);
    return 0;
  },
};

/** How often a slow shutdown says how many events are still going into the audit trail. */
const DRAIN_REPORT_MS = 2_000;

/**
 * Runs `close`; while it takes longer than DRAIN_REPORT_MS and the outbox still holds events, says
 * every so often how many. After a burst the audit trail is behind (a gateway saturated for 18 s
 * leaves ~30,000 events, several seconds of work), and a shutdown hands them all over first: the
 * user sees why it waits, and that stopping at once loses nothing.
 */
export async function closeReportingDrain(
  close: () => Promise<void>,
  backlog: () => Promise<number>,
  io: Pick<Io, 'out'>,
  everyMs = DRAIN_REPORT_MS,
): Promise<void> {
  let closed = false;
  const timer = setInterval(async () => {
    const left = await backlog().catch(() => 0);
    if (left > 0 && !closed) {
      io.out(
        `Shutting down: ${left.toLocaleString('en-US')} events still going into the audit trail. To stop at once, press Ctrl-C again: they stay in the outbox and go in at the next start.`,
      );
    }
  }, everyMs);
  try {
    await close();
  } finally {
    closed = true;
    clearInterval(timer);
  }
}

export interface EmbeddedPlatform {
  readonly gateway: Gateway;
  readonly audit: AuditService;
  close(): Promise<void>;
}

/**
 * V8 lets the old generation grow to up to 4× what survived the last full collection when collecting
 * looks cheap, and this process has only about 45 MB live: under sustained load its heap swung
 * between 90 and 215 MB and RSS with it (280-430 MB). Growing by half at most keeps the heap under
 * about 100 MB and RSS within a few percent over 400,000 requests, for a few µs more of main-thread
 * GC per request (measured on 2 cores). Set at run time because whoever runs the CLI starts `node`;
 * V8 reads it at every full collection.
 */
function limitHeapGrowth(): void {
  setFlagsFromString('--heap-growing-percent=50');
}

/**
 * V8's parallel scavenger and concurrent sweeper hand work to helper threads and wake them through a
 * condition variable, and glibc's pthread_cond_signal can wait until the threads it woke before have
 * run: on a busy machine (more runnable threads than cores) perf trace showed the main thread in such
 * futex waits for 10-90 ms at 500 req/s. On 2 shared cores the helpers cost more than they save:
 * with this work on the main thread, 9 paired 15 s runs averaged 1.12 vs 1.29 ms of CPU per request
 * (all threads), 0.49 vs 0.55 ms (main thread) and 105 vs 140 ms of GC per run.
 * The marking flags and --single-threaded-gc are left alone: V8 aborts when those change once the heap
 * is set up; these are read at each collection.
 */
function keepGcOnMainThread(): void {
  for (const flag of [
    'parallel-scavenge',
    'concurrent-sweeping',
    'parallel-compaction',
    'parallel-pointer-update',
    'concurrent-array-buffer-sweeping',
  ]) {
    setFlagsFromString(`--no-${flag}`);
  }
}

export interface EmbeddedPlatformOptions {
  /** Receives a generated bootstrap admin key (shown once: the caller shows it once the start succeeded). */
  onAdminKeyGenerated?: (secret: string) => void;
  /**
   * Serves the audit gRPC API, before the gateway starts: a port it cannot take fails the start
   * before the gateway has generated an admin key. Admin callers are checked with the gateway's keys.
   */
  serveAuditGrpc?: (audit: AuditService, authorizeAdmin: AdminAuthorizer) => Promise<void>;
  /** Told when closing a part fails after a failed start (the others are closed all the same). */
  onCloseFailure?: (message: string) => void;
}

/** The part of the platform whose start failed. */
export type PlatformPart = 'storage' | 'audit trail' | 'policy service' | 'audit gRPC' | 'gateway';

/** A failed start of the embedded platform: the part that failed, and its error (as the cause). */
export class PlatformStartError extends Error {
  constructor(
    readonly part: PlatformPart,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'PlatformStartError';
  }
}

/**
 * The gateway, the policy service and the audit trail in this process, on one database and one
 * in-process bus; the policy and audit HTTP routes (and the audit OpenAPI document) mount on the
 * gateway's server. `flowloom up` without the console output.
 *
 * A start that fails (a port taken, a bad policy file) closes what it had opened, the last first,
 * each part even when closing an earlier one fails: the database worker, the audit timers and the
 * policy relay would keep the process alive, listening on nothing. (The gateway undoes its own
 * partial start; it generates an admin key only once its ports are bound.)
 */
export async function startEmbeddedPlatform(
  config: Config,
  env: Record<string, string | undefined>,
  options: EmbeddedPlatformOptions = {},
): Promise<EmbeddedPlatform> {
  const opened: { what: string; close: () => Promise<void> }[] = [];
  let part: PlatformPart = 'storage';
  try {
    // One database and one event bus shared by every service in this process.
    const db = await openDb({
      databaseUrl: config.databaseUrl,
      dataDir: join(resolve(config.dataDir), 'db'),
    });
    opened.push({ what: 'the database', close: () => db.close() });
    const bus = new InProcessBus();
    opened.push({ what: 'the event bus', close: () => bus.close() });
    // One /metrics for the process: the audit and policy series register on the gateway's registry
    // (each once; the in-process bus has no health, so no bus gauges).
    const registry = createRegistry();
    registerEmbeddedDbGauges(() => embeddedDbMemory(db), registry);
    // The audit ledger subscribes first, so it receives every event from the very first one.
    part = 'audit trail';
    const audit = await openAudit({ config, db, bus, registry });
    opened.push({ what: 'the audit trail', close: () => audit.close() });
    // Policies: bundles reach the gateway by a direct subscription; the admin API mounts on its HTTP server.
    // The policy gRPC server (policy.grpcPort: the bundle stream for remote gateways, the admin API)
    // checks keys with the gateway's authorizer, which records logins and refusals in the audit trail.
    // It exists once the gateway started, a moment after the policy service.
    let gateway: Gateway | undefined;
    const authorizeGateway: AdminAuthorizer = async (headers, request) => {
      if (!gateway) throw new AppError('unavailable', 'FlowLoom is still starting; try again in a moment.');
      return gateway.authorizeAdmin(headers, request);
    };
    part = 'policy service';
    const policy = await startPolicyService({ config, db, bus, authorizeGateway, registry });
    opened.push({ what: 'the policy service', close: () => policy.close() });
    // Closed with the audit trail, which closes its gRPC servers.
    part = 'audit gRPC';
    await options.serveAuditGrpc?.(audit, authorizeGateway);
    // Last: nothing can fail after it, so a key it generates is never left from a failed start.
    part = 'gateway';
    gateway = await startGateway({
      config,
      env,
      db,
      bus,
      registry,
      policySource: policy.source,
      plugins: [policy.http, audit.httpRoutes],
      apiDocuments: [policyApiDocument, audit.openApi],
      onAdminKeyGenerated: options.onAdminKeyGenerated,
    });
    const started = gateway;
    return {
      gateway: started,
      audit,
      async close() {
        await started.close();
        await policy.close();
        // After the gateway: its outbox drains into the ledger; then the last checkpoint is signed.
        await audit.close();
        await bus.close();
        await db.close();
      },
    };
  } catch (error) {
    const report =
      options.onCloseFailure ?? ((message: string) => process.stderr.write(`flowloom: ${message}\n`));
    for (const { what, close } of opened.reverse()) {
      try {
        await close();
      } catch (closeError) {
        report(`after the failed start, closing ${what} failed too: ${(closeError as Error).message}`);
      }
    }
    throw new PlatformStartError(part, error);
  }
}

/** Why a port cannot be listened on, from a listen error (Node's, or grpc-js's that quotes it). */
const LISTEN_FAILURE = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/;

/**
 * One message for a failed start that says what to do next: for a port that cannot be listened on,
 * which port and the setting that chooses another (as the README's configuration reference names
 * them); any other failure as it is.
 */
export function startFailureMessage(error: unknown, config: Config): string {
  const part = error instanceof PlatformStartError ? error.part : undefined;
  const cause = error instanceof PlatformStartError ? error.cause : error;
  const message = cause instanceof Error ? cause.message : String(cause);
  const reason = LISTEN_FAILURE.exec(message)?.[1];
  if (!reason || !part || !['policy service', 'audit gRPC', 'gateway'].includes(part)) return message;
  const grpc = /^cannot listen for gRPC on (.*):(\d+): /.exec(message);
  const host = config.host;
  let listener: { what: string; port: number; choose: string };
  if (part === 'policy service')
    listener = {
      what: 'the policy gRPC port',
      port: Number(grpc?.[2] ?? config.policy.grpcPort),
      choose: 'policy.grpcPort in flowloom.yaml',
    };
  else if (part === 'audit gRPC')
    listener = {
      what: 'the audit gRPC port',
      port: Number(grpc?.[2] ?? config.audit.grpcPort),
      choose: 'FLOWLOOM_AUDIT_GRPC_PORT (audit.grpcPort), or leave it unset for the gRPC port + 1',
    };
  else if (grpc)
    listener = {
      what: 'the gRPC port',
      port: Number(grpc[2]),
      choose: '--grpc-port N (or FLOWLOOM_GRPC_PORT)',
    };
  else
    listener = {
      what: 'the HTTP port',
      port: (cause as { port?: number }).port ?? config.httpPort,
      choose: '--port N (or FLOWLOOM_HTTP_PORT; 0 picks a free port)',
    };
  const where = `${listener.what} ${listener.port} on ${host}`;
  if (reason === 'EADDRNOTAVAIL')
    return `FlowLoom did not start: cannot listen on ${host}, an address this machine does not have (${where}). Choose another with --host H (or FLOWLOOM_HOST).`;
  if (reason === 'EACCES')
    return `FlowLoom did not start: not permitted to listen on ${where} (ports below 1024 need privileges). Choose another with ${listener.choose}.`;
  return `FlowLoom did not start: ${where} is already in use (by another program, or another flowloom up). Stop that program, or choose another port with ${listener.choose}.`;
}

/**
 * The audit gRPC service gets a server of its own (the gateway's gRPC server takes no plugins): on
 * FLOWLOOM_AUDIT_GRPC_PORT when set, else on the gateway's gRPC port + 1, or any free port when
 * that one is taken. Admins are checked with the gateway's keys.
 */
async function serveAuditGrpc(
  audit: AuditService,
  config: Config,
  authorizeAdmin: Parameters<AuditService['serveGrpc']>[0]['authorizeAdmin'],
  io: Io,
): Promise<number> {
  const explicit = config.audit.grpcPort;
  // Served before the gateway listens: the gRPC port + 1 is left to it when that is its HTTP port.
  const next = config.grpcPort + 1;
  const port = explicit ?? (config.grpcPort === 0 || next === config.httpPort ? 0 : next);
  try {
    return (await audit.serveGrpc({ host: config.host, port, authorizeAdmin })).port;
  } catch (error) {
    if (explicit !== undefined) throw error;
    io.err(`Audit gRPC: port ${port} is taken (${(error as Error).message}); using a free port instead.`);
    return (await audit.serveGrpc({ host: config.host, port: 0, authorizeAdmin })).port;
  }
}

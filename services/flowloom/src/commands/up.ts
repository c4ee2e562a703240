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
Without FLOWLOOM_ADMIN_KEY, a first start generates an admin key and prints it once.
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
    const { gateway, audit, close } = await startEmbeddedPlatform(config, env, (secret) =>
      io.out(
        [
          '',
          '  A bootstrap admin key was generated. It is shown only this once and stored only as a hash:',
          '',
          `    ${secret}`,
          '',
          '  export FLOWLOOM_API_KEY=<that key> to use the CLI and the admin API.',
          '',
        ].join('\n'),
      ),
    );
    const auditGrpc = await serveAuditGrpc(audit, config, gateway.authorizeAdmin, io);
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

/**
 * The gateway, the policy service and the audit trail in this process, on one database and one
 * in-process bus; the policy and audit HTTP routes (and the audit OpenAPI document) mount on the
 * gateway's server. `flowloom up` without the gRPC audit server and the console output.
 */
export async function startEmbeddedPlatform(
  config: Config,
  env: Record<string, string | undefined>,
  onAdminKeyGenerated?: (secret: string) => void,
): Promise<EmbeddedPlatform> {
  // One database and one event bus shared by every service in this process.
  const db = await openDb({
    databaseUrl: config.databaseUrl,
    dataDir: join(resolve(config.dataDir), 'db'),
  });
  const bus = new InProcessBus();
  // One /metrics for the process: the audit and policy series register on the gateway's registry
  // (each once; the in-process bus has no health, so no bus gauges).
  const registry = createRegistry();
  registerEmbeddedDbGauges(() => embeddedDbMemory(db), registry);
  // The audit ledger subscribes first, so it receives every event from the very first one.
  const audit = await openAudit({ config, db, bus, registry });
  // Policies: bundles reach the gateway by a direct subscription; the admin API mounts on its HTTP server.
  // The policy gRPC server (policy.grpcPort: the bundle stream for remote gateways, the admin API)
  // checks keys with the gateway's authorizer, which records logins and refusals in the audit trail.
  // It exists once the gateway started, a moment after the policy service.
  let gateway: Gateway | undefined;
  const authorizeGateway: AdminAuthorizer = async (headers, request) => {
    if (!gateway) throw new AppError('unavailable', 'FlowLoom is still starting; try again in a moment.');
    return gateway.authorizeAdmin(headers, request);
  };
  const policy = await startPolicyService({ config, db, bus, authorizeGateway, registry });
  gateway = await startGateway({
    config,
    env,
    db,
    bus,
    registry,
    policySource: policy.source,
    plugins: [policy.http, audit.httpRoutes],
    apiDocuments: [policyApiDocument, audit.openApi],
    onAdminKeyGenerated,
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
  const port = explicit ?? (config.grpcPort === 0 ? 0 : config.grpcPort + 1);
  try {
    return (await audit.serveGrpc({ host: config.host, port, authorizeAdmin })).port;
  } catch (error) {
    if (explicit !== undefined) throw error;
    io.err(`Audit gRPC: port ${port} is taken (${(error as Error).message}); using a free port instead.`);
    return (await audit.serveGrpc({ host: config.host, port: 0, authorizeAdmin })).port;
  }
}

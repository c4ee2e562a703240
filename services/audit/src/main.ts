import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { busCheck, type EventBus } from '@flowloom/bus';
import type { Config } from '@flowloom/config';
import type { CloudEvent } from '@flowloom/contracts';
import { type Db, openDb } from '@flowloom/store';
import { createLogger, createRegistry, type Logger, type Registry } from '@flowloom/telemetry';
import { DirectoryCheckpointSink, HttpCheckpointSink } from './adapters/checkpoint-sinks.js';
import { FileSigningKeyStore, NoSigningKey } from './adapters/file-signing-key-store.js';
import { openLedgerConnection } from './adapters/ledger-writer-db.js';
import { registerAuditMetrics } from './adapters/prometheus-metrics.js';
import { SqlLedgerStore } from './adapters/sql-ledger-store.js';
import { AuditLedger } from './app/ledger.js';
import { LocalAuditSource } from './app/local-source.js';
import type { ReportSettings } from './app/report.js';
import { consumeAllEvents } from './consumers/bus-consumer.js';
import { retentionRules } from './domain/retention.js';
import { type AuditGrpcServer, startAuditGrpcServer } from './grpc/server.js';
import { auditOpenApi } from './http/openapi.js';
import { type AuditHttpPlugin, auditRoutes } from './http/routes.js';
import { adminKeyAuthorizer, buildAuditHttpServer } from './http/server.js';
import type { AdminAuthorizer } from './ports/admin.js';
import type { CheckpointSink } from './ports/checkpoint-sink.js';

export interface AuditOptions {
  config: Config;
  /** The database to share (`flowloom up` opens one for all services); opened from config otherwise. */
  db?: Db;
  /** The bus to consume every event from, and to publish the ledger's own events to. */
  bus?: EventBus;
  logger?: Logger;
  /**
   * `true` (default): consume events and run the checkpoint and retention timers — the service.
   * `false`: only open the ledger — the CLI verifying, exporting or reporting from a data folder or
   * a database.
   */
  background?: boolean;
  /** Generate a signing key when none exists (default: when running in the background). */
  createKey?: boolean;
  /** Read the signing key at all (default true); false for a reader of a database with no key here. */
  useKey?: boolean;
  /** Where the ledger and consumer series go (the gateway's registry in `flowloom up`); none without. */
  registry?: Registry;
}

export interface AuditService {
  readonly ledger: AuditLedger;
  /** Read access for verification, export and reports, over this ledger. */
  readonly source: LocalAuditSource;
  /** The audit API routes, to mount on a fastify server (the gateway's, in `flowloom up`). */
  readonly httpRoutes: AuditHttpPlugin;
  /** The OpenAPI document of those routes, for a server that mounts them to compose into its own. */
  readonly openApi: typeof auditOpenApi;
  readonly reportSettings: ReportSettings;
  /** Serves `flowloom.audit.v1.Audit` (and gRPC health) on a server of its own. */
  serveGrpc(options: {
    host: string;
    port: number;
    authorizeAdmin: AdminAuthorizer;
  }): Promise<AuditGrpcServer>;
  close(): Promise<void>;
}

/** Where the embedded database and the default signing key live. */
export function auditPaths(config: Config): { dbDir: string; signingKey: string; pidFile: string } {
  const dataDir = resolve(config.dataDir);
  return {
    dbDir: join(dataDir, 'db'),
    signingKey: config.audit.signingKeyFile
      ? resolve(config.audit.signingKeyFile)
      : join(dataDir, 'audit', 'signing-key'),
    pidFile: join(dataDir, 'audit', 'service.pid'),
  };
}

/** The pid of a live process that has the embedded database open, if any. */
export function embeddedOwner(config: Config): number | undefined {
  const { pidFile } = auditPaths(config);
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

function sinksOf(config: Config): CheckpointSink[] {
  const sinks: CheckpointSink[] = [];
  if (config.audit.checkpointDir)
    sinks.push(new DirectoryCheckpointSink(resolve(config.audit.checkpointDir)));
  if (config.audit.checkpointUrl) sinks.push(new HttpCheckpointSink(config.audit.checkpointUrl));
  return sinks;
}

/**
 * Composition root of the audit service: storage → ledger → consumer and timers. The HTTP routes
 * and the gRPC server are handed to the caller, who decides where they are served.
 */
export async function openAudit(options: AuditOptions): Promise<AuditService> {
  const { config } = options;
  const background = options.background ?? true;
  const logger = options.logger ?? createLogger({ service: 'audit', level: config.logLevel });
  const paths = auditPaths(config);
  const ownsDb = !options.db;
  const db = options.db ?? (await openDb({ databaseUrl: config.databaseUrl, dataDir: paths.dbDir }));
  // On PostgreSQL the service runs its ledger as the insert/select-only role (audit.dbRole) on a pool
  // of its own; a reader (the CLI, an auditor's login) keeps its own connection.
  const ledgerDb = await openLedgerConnection(
    db,
    background && config.databaseUrl
      ? { databaseUrl: config.databaseUrl, role: config.audit.dbRole }
      : undefined,
  );
  const store = await SqlLedgerStore.open(ledgerDb.db);
  const bus = options.bus;
  const ledger = await AuditLedger.open({
    store,
    signingKeys:
      options.useKey === false
        ? new NoSigningKey()
        : new FileSigningKeyStore(paths.signingKey, {
            provided: config.audit.signingKeyMode === 'provided',
          }),
    origin: config.audit.origin,
    sinks: sinksOf(config),
    logger,
    publish: bus ? (events: readonly CloudEvent[]) => bus.publish(events) : undefined,
    autoIndex: background,
    createKey: options.createKey ?? background,
  });
  const rules = retentionRules(config.audit.retention);
  const reportSettings: ReportSettings = {
    retention: config.audit.retention,
    externalCopies: {
      folder: config.audit.checkpointDir !== undefined,
      url: config.audit.checkpointUrl !== undefined,
    },
  };

  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  const every = (ms: number, task: () => Promise<unknown>, what: string): void => {
    const run = (): void => {
      if (stopped) return;
      task()
        .catch((error: unknown) => logger.warn({ err: error }, `audit: ${what} failed; will retry`))
        .finally(() => {
          if (stopped) return;
          const timer = setTimeout(run, ms);
          timer.unref();
          timers.push(timer);
        });
    };
    const timer = setTimeout(run, ms);
    timer.unref();
    timers.push(timer);
  };

  let ownsPidFile = false;
  if (background) {
    const metrics = options.registry
      ? registerAuditMetrics(options.registry, {
          get size() {
            return ledger.size;
          },
          get indexBacklog() {
            return ledger.indexBacklog;
          },
          get wordsBacklog() {
            return ledger.wordsBacklog;
          },
          latestCheckpointAt: async () => (await store.latestCheckpoint())?.issuedAt,
        })
      : undefined;
    if (bus) await consumeAllEvents(bus, ledger, metrics);
    // An empty log gets its first checkpoint right away, so the public key and a checkpoint exist.
    await ledger.checkpointIfNew();
    every(config.audit.checkpointIntervalMs, () => ledger.checkpointIfNew(), 'checkpoint');
    if (rules.length > 0)
      every(config.audit.retentionIntervalMs, () => ledger.applyRetention(rules), 'retention');
    if (db.kind === 'pglite') {
      mkdirSync(dirname(paths.pidFile), { recursive: true });
      writeFileSync(paths.pidFile, String(process.pid));
      ownsPidFile = true;
    }
  }
  logger.info(
    { origin: ledger.origin, treeSize: ledger.size, keyId: ledger.keyId, storage: db.kind },
    'audit ledger open',
  );

  const grpcServers: AuditGrpcServer[] = [];
  let closing: Promise<void> | undefined;
  return {
    ledger,
    source: new LocalAuditSource(
      ledger,
      db.kind === 'pglite' ? `data folder ${config.dataDir}` : 'PostgreSQL',
    ),
    httpRoutes: auditRoutes({ ledger, report: reportSettings, retention: rules }),
    openApi: auditOpenApi,
    reportSettings,
    async serveGrpc({ host, port, authorizeAdmin }) {
      const server = await startAuditGrpcServer(ledger, authorizeAdmin, host, port, logger);
      grpcServers.push(server);
      return server;
    },
    close() {
      closing ??= (async () => {
        stopped = true;
        for (const timer of timers) clearTimeout(timer);
        await Promise.all(grpcServers.map((s) => s.close()));
        await ledger.close();
        await ledgerDb.close();
        if (ownsPidFile) rmSync(paths.pidFile, { force: true });
        if (ownsDb) await db.close();
      })();
      return closing;
    },
  };
}

/**
 * Opens an existing ledger directly, without a running service: the embedded database in the data
 * folder (refused while a platform has it open) or PostgreSQL at databaseUrl. For the CLI's
 * verify, export and report; it signs nothing unless the data folder holds the signing key.
 */
export async function openAuditDirect(config: Config, logger?: Logger): Promise<AuditService> {
  const paths = auditPaths(config);
  if (!config.databaseUrl) {
    if (!existsSync(paths.dbDir)) {
      throw new Error(
        `there is no FlowLoom data in ${resolve(config.dataDir)} (no db folder): check --data-dir`,
      );
    }
    const owner = embeddedOwner(config);
    if (owner !== undefined) {
      throw new Error(
        `FlowLoom (pid ${owner}) has ${resolve(config.dataDir)} open: use the running platform (FLOWLOOM_URL, FLOWLOOM_API_KEY) or stop it first`,
      );
    }
  }
  // A command reading a stopped platform's ledger: the database is the whole job (see EmbeddedDbPurpose).
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: paths.dbDir, purpose: 'tool' });
  try {
    const { rows } = await db.query<{ n: unknown }>(
      "select count(*) as n from schema_migrations where id = 'audit/001_ledger'",
    );
    if (Number(rows[0]?.n ?? 0) === 0) throw new Error('no audit/001_ledger migration');
  } catch {
    await db.close();
    throw new Error(
      `there is no audit ledger in ${config.databaseUrl ? 'this database' : resolve(config.dataDir)}: nothing to read`,
    );
  }
  const service = await openAudit({
    config,
    db,
    background: false,
    createKey: false,
    // The data folder holds its log's key; for a database, only an explicitly configured key counts
    // (a ./.flowloom key from some local platform belongs to another log).
    useKey: !config.databaseUrl || config.audit.signingKeyFile !== undefined,
    logger: logger ?? createLogger({ service: 'audit', level: 'silent' }),
  });
  return {
    ...service,
    async close() {
      await service.close();
      await db.close();
    },
  };
}

export interface StandaloneAudit {
  readonly service: AuditService;
  readonly httpUrl: string;
  readonly grpcAddress: string;
  close(): Promise<void>;
}

/**
 * The audit service as its own process (distributed mode): its HTTP API on `audit.httpPort`, gRPC
 * on `audit.grpcPort` (50052 by default), admins authenticated by FLOWLOOM_ADMIN_KEY unless an
 * authorizer is given.
 */
export async function startAudit(
  options: AuditOptions & { authorizeAdmin?: AdminAuthorizer },
): Promise<StandaloneAudit> {
  const { config } = options;
  let authorizeAdmin = options.authorizeAdmin;
  if (!authorizeAdmin) {
    if (!config.adminKey) {
      throw new Error(
        'the standalone audit service authenticates admins with FLOWLOOM_ADMIN_KEY, which is not set. Fix: export FLOWLOOM_ADMIN_KEY (the same admin key as the gateway).',
      );
    }
    authorizeAdmin = adminKeyAuthorizer(config.adminKey);
  }
  const logger = options.logger ?? createLogger({ service: 'audit', level: config.logLevel });
  // Its own /metrics: process metrics plus the ledger series (and the bus's, when the caller adds them).
  const registry = options.registry ?? createRegistry();
  const service = await openAudit({ ...options, logger, registry });
  const http = await buildAuditHttpServer(
    service.httpRoutes,
    authorizeAdmin,
    async () => {
      const checks: Record<string, string> = {};
      try {
        await service.ledger.ledgerStore.treeSize();
        checks.database = 'ok';
      } catch (error) {
        checks.database = `unavailable: ${(error as Error).message}`;
      }
      // Not ready while its consumer cannot consume: turning events into evidence is this service's
      // job, and a ledger that silently stopped growing would answer "not in the log" for requests
      // that were answered (their events wait in the gateways' outboxes). Reads of what is already
      // in the ledger go on being served; only the readiness (and alerting on it) reflects the outage.
      const health = options.bus?.health?.();
      if (health)
        checks.bus = busCheck(
          health,
          "new events wait in the gateways' outboxes and reach the ledger once it is back",
        );
      return checks;
    },
    logger,
    registry,
  );
  await http.listen({ host: config.host, port: config.audit.httpPort });
  const address = http.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.audit.httpPort;
  const grpc = await service.serveGrpc({
    host: config.host,
    port: config.audit.grpcPort ?? 50052,
    authorizeAdmin,
  });
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    service,
    httpUrl: `http://${host}:${httpPort}`,
    grpcAddress: `${host}:${grpc.port}`,
    async close() {
      await http.close();
      await service.close();
    },
  };
}

import { join, resolve } from 'node:path';
import { busCheck, type EventBus, InProcessBus } from '@flowloom/bus';
import { type Config, ConfigError } from '@flowloom/config';
import { parkedGauge, reportParked, SqlParkedEvents } from '@flowloom/outbox';
import { LOCAL_EMBEDDING_MODEL, LOCAL_MODEL } from '@flowloom/providers';
import { type Db, migrate, openDb } from '@flowloom/store';
import {
  Counter,
  createLogger,
  createRegistry,
  Gauge,
  type Logger,
  type Registry,
} from '@flowloom/telemetry';
import type { FastifyInstance } from 'fastify';
import { FallbackLimitStore, type LimitsHandOver } from './adapters/fallback-limit-store.js';
import { FallbackOutbox } from './adapters/fallback-outbox.js';
import { FallbackSignalStore } from './adapters/fallback-signal-store.js';
import { FallbackThrottleSemaphore } from './adapters/fallback-throttle-semaphore.js';
import { FileOutbox } from './adapters/file-outbox.js';
import { FilePolicySource } from './adapters/file-policy-source.js';
import { GrpcPolicySource } from './adapters/grpc-policy-source.js';
import { HttpAlertTransport } from './adapters/http-alert-transport.js';
import { MemoryLimitStore } from './adapters/memory-limit-store.js';
import { MemorySignalStore } from './adapters/memory-signal-store.js';
import { MemoryThrottleSemaphore } from './adapters/memory-throttle-semaphore.js';
import { gatewayMigrations } from './adapters/migrations.js';
import { createPrometheusAlertMetrics } from './adapters/prometheus-alert-metrics.js';
import { createPrometheusMetrics } from './adapters/prometheus-metrics.js';
import { RedisLimitStore } from './adapters/redis-limit-store.js';
import { RedisSignalStore } from './adapters/redis-signal-store.js';
import { RedisThrottleSemaphore } from './adapters/redis-throttle-semaphore.js';
import { SqlKeyStore } from './adapters/sql-key-store.js';
import { SqlLimitsJournal } from './adapters/sql-limits-journal.js';
import { OutboxRelay, SqlOutbox } from './adapters/sql-outbox.js';
import { type AdminAuthorizer, adminAuthorizer } from './admin-authorizer.js';
import { AlertDispatcher } from './app/alert-dispatcher.js';
import { AuthEvents } from './app/auth-events.js';
import { Authenticator } from './app/authenticate.js';
import { bootstrapAdmin } from './app/bootstrap-admin.js';
import { ChatService } from './app/chat.js';
import { EmbeddingsService } from './app/embeddings.js';
import { GATEWAY_SOURCE } from './app/events.js';
import { JobPolicies } from './app/job-policies.js';
import { KeysAdmin } from './app/keys-admin.js';
import { Limiter } from './app/limits.js';
import { POLICY_SOURCE, PolicyGate } from './app/policy-gate.js';
import { Router } from './app/router.js';
import { signalWindows } from './domain/signals.js';
import { startGrpcServer } from './grpc/server.js';
import { registerAdminJobs } from './http/routes/admin-jobs.js';
import { registerAdminOutbox } from './http/routes/admin-outbox.js';
import type { OpenApiDocument } from './http/routes/openapi.js';
import { isReady } from './http/routes/operations.js';
import { buildHttpServer, type ServedRoute, servedRoutes } from './http/server.js';
import type { LimitStore } from './ports/limit-store.js';
import type { Outbox } from './ports/outbox.js';
import type { ParkedEvents } from './ports/parked-events.js';
import type { PolicySource } from './ports/policy-source.js';
import type { SignalStore } from './ports/signal-store.js';
import type { ThrottleSemaphore } from './ports/throttle-semaphore.js';
import { createProviderClients } from './providers.js';
import { busGauges, policySourceCheck, policySourceGauges } from './source-health.js';

export interface GatewayOptions {
  config: Config;
  /** Environment for provider credentials; process.env by default. */
  env?: Record<string, string | undefined>;
  /** Shared storage and bus when composed with other services in one process (`flowloom up`). */
  db?: Db;
  bus?: EventBus;
  logger?: Logger;
  registry?: Registry;
  /**
   * Routes of other services mounted on the gateway's HTTP server when they run in this process
   * (`flowloom up`). Each gets the function that authenticates an admin caller.
   */
  plugins?: ReadonlyArray<HttpPlugin>;
  /** The OpenAPI documents of those routes, composed into the one served at /api/v1/openapi.json. */
  apiDocuments?: readonly OpenApiDocument[];
  /**
   * Where policy bundles come from when the policy service runs in this process (a direct
   * subscription). Otherwise `policy.serviceUrl` streams them over gRPC, or `policy.file` is enforced.
   */
  policySource?: PolicySource;
  /** Receives a generated bootstrap admin key, which exists nowhere else. */
  onAdminKeyGenerated?: (secret: string) => void;
}

export type HttpPlugin = (app: FastifyInstance, authorizeAdmin: AdminAuthorizer) => void | Promise<void>;

export interface Gateway {
  httpUrl: string;
  /** Checks an admin caller against this gateway's keys (for services composed in this process). */
  authorizeAdmin: AdminAuthorizer;
  grpcAddress: string;
  db: Db;
  bus: EventBus;
  /** The inline policy decision: the active bundle's status, job stops. */
  policy: PolicyGate;
  /** A counter of the budgets and rate limits store, e.g. a budget's spend in micro-dollars (`budget:key:<id>:total:all`). */
  limitCounter(key: string): Promise<number>;
  /** The HTTP routes served, mounted plugins' included. */
  routes(): readonly ServedRoute[];
  /** Publishes every outbox row now (tests and shutdown). */
  flushOutbox(): Promise<number>;
  /** Events written to the outbox and not yet published on the bus (what a shutdown still hands over). */
  outboxBacklog(): Promise<number>;
  close(): Promise<void>;
}

interface RelayedOutbox extends Outbox {
  start(): void;
  /** The bus is back: publish now instead of at the end of a failure back-off. */
  retryNow?(): void;
  publishPending(): Promise<number>;
  /** Events written and not yet published on the bus. */
  pendingCount(): Promise<number>;
  close(): Promise<void>;
  /** `ok`, or what is degraded (for /readyz). */
  status?(): string;
  /** Events the bus refused for good, set aside (the SQL outbox parks them). */
  parked?: ParkedEvents;
}

/**
 * On PostgreSQL the outbox is a table written in the same database, relayed with skip-locked batches;
 * when the database is unreachable, events spool locally or requests fail closed (`outboxOnDatabaseDown`).
 */
/** The embedded outbox: a file log, with what it found damaged on disk counted and logged. */
async function fileOutbox(
  dir: string,
  bus: EventBus,
  config: Config,
  registry: Registry,
  log: Logger,
  onError: (err: unknown) => void,
): Promise<RelayedOutbox> {
  const outbox = await FileOutbox.open(dir, bus, {
    fsync: config.outboxFsync,
    onError,
    onDamage: (message) => log.warn(message),
    onParked: reportParked(registry, log),
  });
  parkedGauge(registry, outbox.parked);
  new Gauge({
    name: 'flowloom_outbox_skipped_lines',
    help: 'Outbox lines found damaged on disk since start and skipped (never published): restore the segment from a backup to recover them',
    registers: [registry],
    collect() {
      this.set(outbox.skippedLines);
    },
  });
  return outbox;
}

async function sqlOutbox(
  db: Db,
  bus: EventBus,
  config: Config,
  registry: Registry,
  log: Logger,
  onError: (err: unknown) => void,
): Promise<RelayedOutbox> {
  const relay = new OutboxRelay(db, bus, { onError, onParked: reportParked(registry, log) });
  const parked = new SqlParkedEvents(db, () => relay.publishPending());
  parkedGauge(registry, parked);
  const outbox = await FallbackOutbox.open(new SqlOutbox(db, () => relay.wake()), {
    mode: config.outboxOnDatabaseDown,
    spoolDir: join(resolve(config.dataDir), 'outbox-spool'),
    fsync: config.outboxFsync,
    probe: async () => {
      await db.query('select 1');
    },
    onChange: reportFallback(
      'outbox',
      'the database behind the outbox (PostgreSQL)',
      config.outboxOnDatabaseDown,
      registry,
      log,
    ),
    onError: (err) => log.warn({ err }, 'outbox spool: cannot move events into the database yet'),
    onClose: (message, left) => (left > 0 ? log.error(message) : log.info(message)),
  });
  new Gauge({
    name: 'flowloom_outbox_spooled_events',
    help: 'Events waiting in the local spool for the database to come back',
    registers: [registry],
    collect() {
      this.set(outbox.spooled);
    },
  });
  return {
    append: (events) => outbox.append(events),
    ensureWritable: () => outbox.ensureWritable(),
    start: () => {
      outbox.start();
      relay.start();
    },
    retryNow: () => relay.retryNow(),
    publishPending: async () => {
      await outbox.drainSpool();
      return relay.publishPending();
    },
    status: () => outbox.status(),
    pendingCount: () => relay.backlog(),
    parked,
    close: async () => {
      await outbox.close();
      await relay.stop();
    },
  };
}

/** What a start has done so far, each step with how to undo it should the start fail. */
interface StartUndo {
  steps: { what: string; undo: () => unknown }[];
  log?: Logger;
}

/**
 * Composition root of the gateway: configuration → adapters → use cases → servers. A start that
 * fails part-way (a port taken, Redis refusing) undoes what it had done, the last first, each step
 * even when an earlier one fails: nothing it opened keeps the process alive, and the process that
 * called it can exit.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const started: StartUndo = { steps: [] };
  try {
    return await openGateway(options, started);
  } catch (error) {
    for (const { what, undo } of started.steps.reverse()) {
      try {
        await undo();
      } catch (undoError) {
        started.log?.error({ err: undoError }, `start-up failed, and undoing it failed at ${what}`);
      }
    }
    started.log?.flush();
    throw error;
  }
}

async function openGateway(options: GatewayOptions, started: StartUndo): Promise<Gateway> {
  const onFailure = (what: string, undo: () => unknown): void => {
    started.steps.push({ what, undo });
  };
  const { config } = options;
  const env = options.env ?? process.env;
  // Before anything opens: a gateway that streams policies cannot start without its credential.
  if (!options.policySource && config.policy.serviceUrl) policyServiceKey(config);
  const log = options.logger ?? createLogger({ service: 'gateway', level: config.logLevel });
  started.log = log;
  const registry = options.registry ?? createRegistry();
  const ownsDb = !options.db;
  const db =
    options.db ??
    (await openDb({ databaseUrl: config.databaseUrl, dataDir: join(resolve(config.dataDir), 'db') }));
  if (ownsDb) onFailure('the database', () => db.close());
  await migrate(db, gatewayMigrations);
  const bus: EventBus = options.bus ?? new InProcessBus();
  if (!options.bus) onFailure('the event bus', () => bus.close());

  const onRelayError = (err: unknown): void => log.warn({ err }, 'outbox relay: publish failed, will retry');
  const outbox: RelayedOutbox = config.databaseUrl
    ? await sqlOutbox(db, bus, config, registry, log, onRelayError)
    : await fileOutbox(join(resolve(config.dataDir), 'outbox'), bus, config, registry, log, onRelayError);
  const relay = outbox;
  onFailure('the outbox', () => relay.close());
  const unsubscribeBus = bus.onConnected?.(() => relay.retryNow?.());
  onFailure('the bus subscription', () => unsubscribeBus?.());
  busGauges(bus, registry);
  new Gauge({
    name: 'flowloom_outbox_backlog_events',
    help: 'Events in the outbox not yet published on the bus (growing: the consumers, e.g. the audit ledger, are behind)',
    registers: [registry],
    async collect() {
      try {
        this.set(await relay.pendingCount());
      } catch {
        // Unreadable while the database is down: the last count stays, and /metrics still answers.
      }
    },
  });
  const keyStore = new SqlKeyStore(db);
  const auth = new Authenticator(keyStore);
  const authEvents = new AuthEvents(outbox, {
    failureWindowMs: config.authFailureWindowMs,
    onError: (err) => log.warn({ err }, 'authentication event could not be recorded'),
  });
  auth.recordTo(authEvents);
  onFailure('the authentication events', () => authEvents.close());
  const policySource = await openPolicySource(options.policySource, config, log);
  if (!options.policySource) onFailure('the policy source', () => policySource?.close?.());
  // Job policies (`flowloom run --policy`) come from the policy service, one version at a time.
  const fetchVersion = policySource?.fetchVersion?.bind(policySource);
  const jobPolicies = new JobPolicies(fetchVersion);
  const keys = new KeysAdmin(
    keyStore,
    outbox,
    () => auth.invalidate(),
    undefined,
    async (id) => {
      const policy = await jobPolicies.get(id);
      return { name: policy.name, version: policy.version };
    },
  );

  const metrics = createPrometheusMetrics(registry);
  const router = new Router(config, createProviderClients(config, env), [LOCAL_MODEL, LOCAL_EMBEDDING_MODEL]);
  // Shared through Redis when configured; each store falls back while Redis is unreachable.
  const limits: LimitStore & { check?: () => Promise<string> } = config.redisUrl
    ? new FallbackLimitStore(
        await RedisLimitStore.open(config.redisUrl),
        new MemoryLimitStore(),
        config.limitsFallback,
        {
          onChange: reportFallback(
            'limits',
            'the shared budgets/rate-limits store (Redis)',
            config.limitsFallback,
            registry,
            log,
          ),
          onHandOver: reportLimitsHandOver(registry, log),
          journal: new SqlLimitsJournal(db),
          onJournalError: (err) =>
            log.warn({ err }, 'limits journal: local counts not written or read, will retry'),
        },
      )
    : new MemoryLimitStore();
  onFailure('the limits store', () => limits.close());
  const limiter = new Limiter(limits, config.budgets, config.rateLimits, {
    defaultMaxOutputTokens: config.defaultMaxOutputTokens,
  });
  const windows = signalWindows(config.signals);
  const signals: SignalStore & { check?: () => Promise<string> } = config.redisUrl
    ? new FallbackSignalStore(
        await RedisSignalStore.open(config.redisUrl, windows),
        new MemorySignalStore(windows),
        {
          onChange: reportFallback(
            'signals',
            'the shared runaway-signals store (Redis)',
            'local',
            registry,
            log,
          ),
        },
      )
    : new MemorySignalStore(windows);
  onFailure('the signals store', () => signals.close());
  const throttle: ThrottleSemaphore & { check?: () => Promise<string> } = config.redisUrl
    ? new FallbackThrottleSemaphore(
        await RedisThrottleSemaphore.open(config.redisUrl),
        new MemoryThrottleSemaphore(),
        {
          onChange: reportFallback(
            'throttle',
            'the shared throttle-queue store (Redis)',
            'local',
            registry,
            log,
          ),
        },
      )
    : new MemoryThrottleSemaphore();
  onFailure('the throttle store', () => throttle.close());
  const alerts = new AlertDispatcher({
    ...config.alerts,
    windowMs: config.alerts.windowSeconds * 1000,
    transport: new HttpAlertTransport(config.alerts.channels, env),
    channels: new Map(Object.entries(config.alerts.channels).map(([name, c]) => [name, c.format])),
    outbox,
    metrics: createPrometheusAlertMetrics(registry),
    source: POLICY_SOURCE,
    onWarning: (message) => log.warn(message),
  });
  onFailure('the alerts', () => alerts.close());
  const gate = new PolicyGate({
    alerts,
    throttle,
    signals,
    windows,
    outbox,
    keys,
    limits,
    budgets: config.budgets,
    onRejected: (message) => log.error(message),
    jobPolicies,
  });
  if (policySource) policySourceGauges(policySource, registry);
  const unsubscribePolicy = policySource?.subscribe((bundle) => {
    gate.load(bundle);
    log.info({ revision: bundle.revision, policies: gate.status().policies }, 'policy bundle in force');
  });
  onFailure('the policy subscription', () => unsubscribePolicy?.());
  const chat = new ChatService(router, config.routing, outbox, metrics, limiter, gate);
  const embeddings = new EmbeddingsService(router, config.routing, outbox, metrics, limiter, gate);

  const readiness = async (): Promise<Record<string, string>> => {
    const checks: Record<string, string> = {};
    try {
      await db.query('select 1');
      checks.database = 'ok';
    } catch (error) {
      checks.database = `unavailable: ${(error as Error).message}`;
    }
    const outboxStatus = outbox.status?.();
    if (outboxStatus !== undefined) {
      checks.outbox = outboxStatus;
      // Spooling, the gateway still serves the keys it knows: degraded, not down.
      if (checks.database !== 'ok' && config.outboxOnDatabaseDown === 'spool')
        checks.database = `degraded: ${checks.database}; events spool locally`;
    }
    const busHealth = bus.health?.();
    // Events wait in the durable outbox: the gateway serves on, so this never makes it not ready.
    if (busHealth)
      checks.bus = busCheck(
        busHealth,
        `answered requests' events wait in the outbox (${await relay.pendingCount().catch(() => '?')} now) and are published once it is back`,
      );
    const policyCheck = policySource && policySourceCheck(policySource);
    if (policyCheck) checks.policy = policyCheck;
    if (limits.check) checks.limits = await limits.check();
    if (signals.check) checks.signals = await signals.check();
    if (throttle.check) checks.throttle = await throttle.check();
    return checks;
  };

  const authorizeAdmin = adminAuthorizer(auth);

  const deps = {
    auth,
    chat,
    embeddings,
    keys,
    policy: gate,
    router,
    metrics,
    registry,
    maxBodyBytes: config.maxBodyBytes,
    readiness,
    mountedApiDocuments: options.apiDocuments,
  };
  const http = buildHttpServer(deps, log);
  onFailure('the HTTP server', () => http.close());
  registerAdminJobs(http, deps);
  registerAdminOutbox(http, {
    ...deps,
    outbox,
    source: GATEWAY_SOURCE,
    ...(outbox.parked ? { parked: outbox.parked } : {}),
  });
  for (const plugin of options.plugins ?? []) await plugin(http, authorizeAdmin);
  await http.listen({ host: config.host, port: config.httpPort });
  const address = http.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  const grpc = await startGrpcServer(
    {
      auth,
      chat,
      router,
      keys,
      authorizeAdmin,
      ready: async () => isReady(await readiness()),
      databaseUp: async () => {
        await db.query('select 1');
        return true;
      },
    },
    config.host,
    config.grpcPort,
    log,
  );
  // The bootstrap admin key once every port is bound: a generated one is shown once, and a start
  // that fails before this point (a port taken) leaves no key behind, so the next start makes one.
  const generated = await bootstrapAdmin(keys, config.adminKey);
  if (generated) options.onAdminKeyGenerated?.(generated);
  relay.start();
  const hostForUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
  log.info(
    { http: `http://${hostForUrl}:${httpPort}`, grpc: `${hostForUrl}:${grpc.port}`, storage: db.kind },
    'gateway started',
  );

  let closing: Promise<void> | undefined;
  return {
    authorizeAdmin,
    httpUrl: `http://${hostForUrl}:${httpPort}`,
    grpcAddress: `${hostForUrl}:${grpc.port}`,
    db,
    bus,
    policy: gate,
    limitCounter: (key) => limits.get(key),
    routes: () => servedRoutes(http),
    flushOutbox: () => relay.publishPending(),
    outboxBacklog: () => relay.pendingCount(),
    close() {
      closing ??= (async () => {
        // Stop taking requests, let in-flight ones (streams included) finish, then drain the outbox.
        // Keep-alive connections that fall idle after close() started would hold it open: sweep them.
        const sweep = setInterval(() => http.server.closeIdleConnections(), 100);
        await Promise.all([http.close(), grpc.close()]).finally(() => clearInterval(sweep));
        // A post-call suspension or job stop still running appends its events; so do the refused-key
        // windows: both go into the outbox before the relay drains it.
        await gate.settled();
        // Pending alerts get a moment to go out; their delivery events go into the outbox.
        await alerts.close();
        await authEvents.close();
        unsubscribePolicy?.();
        unsubscribeBus?.();
        if (!options.policySource) await policySource?.close?.();
        await relay.close();
        await limits.close();
        await signals.close();
        await throttle.close();
        if (ownsDb) await db.close();
        log.info('gateway stopped');
        log.flush();
      })();
      return closing;
    },
  };
}

/** A store's fallback in metrics (`flowloom_<what>_degraded`) and logs. */
function reportFallback(
  what: 'limits' | 'signals' | 'outbox' | 'throttle',
  store: string,
  fallback: string,
  registry: Registry,
  log: Logger,
): (degraded: boolean, reason: string) => void {
  const gauge = new Gauge({
    name: `flowloom_${what}_degraded`,
    help: `1 while ${store} is unreachable and the fallback is in use`,
    registers: [registry],
  });
  return (degraded, reason) => {
    gauge.set(degraded ? 1 : 0);
    if (degraded) log.error({ reason, fallback }, `${what} store unreachable; falling back`);
    else log.warn(`${what} store reachable again`);
  };
}

/** Budgets and rate limits handed to Redis after an outage, in metrics and logs. */
function reportLimitsHandOver(registry: Registry, log: Logger): (handOver: LimitsHandOver) => void {
  const counters = new Counter({
    name: 'flowloom_limits_handed_over_counters_total',
    help: 'Counters (budget spend, tokens, rate-limit windows) counted locally during a Redis outage and added to Redis once it was back',
    registers: [registry],
  });
  return ({ added, amounts }) => {
    if (added) counters.inc(Object.keys(amounts).length);
    log.warn(
      { added, amounts },
      added
        ? 'limits counted locally during the Redis outage added to Redis'
        : 'limits hand-over already applied by Redis; nothing added twice',
    );
  };
}

/** The credential the gateway presents to the policy service's bundle stream. */
function policyServiceKey(config: Config): string {
  const key = config.policy.serviceKey ?? config.adminKey;
  if (!key)
    throw new ConfigError(
      'FLOWLOOM_POLICY_SERVICE_URL (policy.serviceUrl) is set but the gateway has no credential for the policy service. Fix: set FLOWLOOM_POLICY_SERVICE_KEY (or FLOWLOOM_ADMIN_KEY) to an admin key.',
    );
  return key;
}

/**
 * The policy source: the one given (the policy service in this process), else the policy service's
 * gRPC stream (waiting briefly for the first bundle), else a watched policy file, else none.
 */
async function openPolicySource(
  given: PolicySource | undefined,
  config: Config,
  log: Logger,
): Promise<PolicySource | undefined> {
  if (given) return given;
  const { serviceUrl, file, mode, percent } = config.policy;
  if (serviceUrl) {
    const name = `gateway@${config.host}:${config.httpPort}`;
    const source = new GrpcPolicySource(serviceUrl, name, policyServiceKey(config), (message) =>
      log.warn(message),
    );
    if (!(await source.ready(5_000)))
      log.warn({ serviceUrl }, 'no policy bundle from the policy service yet; starting without policies');
    return source;
  }
  if (file) return FilePolicySource.open(file, { mode, percent }, (message) => log.error(message));
  return undefined;
}

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type EventBus, InProcessBus } from '@flowloom/bus';
import type { Config } from '@flowloom/config';
import type { PolicyBundle } from '@flowloom/contracts';
import { POLICY_OUTBOX, parkedGauge, reportParked, SqlParkedEvents } from '@flowloom/outbox';
import { type Db, migrateUnlessApplied, openDb } from '@flowloom/store';
import { createLogger, createRegistry, type Logger, type Registry } from '@flowloom/telemetry';
import type { FastifyInstance } from 'fastify';
import { writeLeftoverDecisions } from './adapters/decision-journal-leftovers.js';
import { policyMigrations } from './adapters/migrations.js';
import { registerPolicyMetrics } from './adapters/prometheus-metrics.js';
import { SqlDecisionStore } from './adapters/sql-decision-store.js';
import { appendPolicyEvents, SqlEventRelay } from './adapters/sql-event-relay.js';
import { SqlOperationalRetention } from './adapters/sql-operational-retention.js';
import { SqlPolicyRepository } from './adapters/sql-policy-repository.js';
import { SqlRequestStore } from './adapters/sql-request-store.js';
import { DecisionsService } from './app/decisions.js';
import { BundleDistributor } from './app/distribution.js';
import { POLICY_SOURCE, PolicyAdmin } from './app/policies.js';
import { ReplayService } from './app/replay.js';
import { scheduleRetention } from './app/retention.js';
import { consumeDecisions } from './consumers/decisions.js';
import { consumeRequests } from './consumers/requests.js';
import { startPolicyGrpc } from './grpc/server.js';
import { type AdminAuthorizer, policyRoutes } from './http/routes.js';

export interface PolicyServiceOptions {
  config: Config;
  /** Shared with the other services in this process (`flowloom up`); opened from the config otherwise. */
  db?: Db;
  bus?: EventBus;
  logger?: Logger;
  /**
   * The gRPC server (bundle stream for remote gateways, admin API, health): config.policy.grpcPort by
   * default; off when neither is set.
   */
  grpcPort?: number;
  /**
   * Checks the admin key a gateway presents on the bundle stream, and an admin's on the gRPC admin API;
   * required when the gRPC server is on.
   */
  authorizeGateway?: AdminAuthorizer;
  /** How often other replicas' changes are looked for (ms). */
  pollMs?: number;
  /** Where the decision-store and outbox series go (the gateway's registry in `flowloom up`); none without. */
  registry?: Registry;
}

export interface PolicyService {
  /** Gateways in this process subscribe here (the gateway's PolicySource). */
  source: {
    subscribe(onBundle: (bundle: PolicyBundle) => void): () => void;
    /** A stored version by id or prefix, active or not (a job policy bound to a key). */
    fetchVersion(idOrPrefix: string): Promise<{ name: string; version: string; document: unknown }>;
  };
  /** The admin API, mounted on an HTTP server with an admin authorizer (the gateway's `plugins`). */
  http: (app: FastifyInstance, authorizeAdmin: AdminAuthorizer) => Promise<void>;
  admin: PolicyAdmin;
  decisions: DecisionsService;
  replay: ReplayService;
  distributor: BundleDistributor;
  /** `host:port` of the gRPC server (bundle stream, admin API), when started. */
  grpcAddress?: string;
  /** Publishes the service's pending events now (tests). */
  flushEvents(): Promise<number>;
  close(): Promise<void>;
}

/** Composition root of the policy service: storage → use cases → consumers and servers. */
export async function startPolicyService(options: PolicyServiceOptions): Promise<PolicyService> {
  const { config } = options;
  const grpcPort = options.grpcPort ?? config.policy.grpcPort;
  // Bundles reveal every policy: never serve them without a way to check who asks.
  const { authorizeGateway } = options;
  if (grpcPort !== undefined && !authorizeGateway)
    throw new Error('the policy bundle stream (gRPC) needs authorizeGateway to check gateway credentials');
  const log = options.logger ?? createLogger({ service: 'policy', level: config.logLevel });
  const ownsDb = !options.db;
  const db =
    options.db ?? (await openDb({ databaseUrl: config.databaseUrl, dataDir: `${config.dataDir}/db` }));
  const ownsBus = !options.bus;
  const bus: EventBus = options.bus ?? new InProcessBus();
  // Left alone once applied: a login without DDL rights (policy.dbLogin) starts on a migrated database.
  await migrateUnlessApplied(db, policyMigrations);

  // The parked events' series go on a registry of their own when the service exposes none.
  const registry = options.registry ?? createRegistry();
  const relay = new SqlEventRelay(
    db,
    bus,
    (err) => log.warn({ err }, 'policy events: publish failed, will retry'),
    { source: POLICY_SOURCE, onParked: reportParked(registry, log, POLICY_OUTBOX) },
  );
  const parked = new SqlParkedEvents(db, () => relay.publishPending(), {
    name: 'policy_outbox',
    idType: 'text',
  });
  const repo = new SqlPolicyRepository(db, () => relay.wake());
  // Kafka back after an outage: publish what waited at once rather than at the next poll.
  const unsubscribeBus = bus.onConnected?.(() => relay.wake());
  const distributor = new BundleDistributor(
    repo,
    (err) => log.error({ err }, 'policy bundle refresh failed'),
    options.pollMs,
  );
  const admin = new PolicyAdmin(repo, () => distributor.refresh());
  const store = new SqlDecisionStore(db);
  if (db.kind === 'pglite') {
    const leftovers = await writeLeftoverDecisions(store, join(resolve(config.dataDir), 'policy-decisions'));
    if (leftovers > 0) log.info(`decisions: wrote ${leftovers} left in the journal of an earlier version`);
  }
  const decisions = new DecisionsService(store, repo);
  // Replay's traffic when no decision was recorded (no policy active): the request events.
  const requests = new SqlRequestStore(db);
  const replay = new ReplayService(repo, store, undefined, requests);

  if (config.policy.file) {
    const file = config.policy.file;
    const result = await admin.bootstrap(
      { source: readPolicyFile(file), filename: file },
      config.policy.mode,
      config.policy.percent,
      { id: 'config', label: `config:${file}` },
    );
    log.info(
      {
        policy: result.version.name,
        version: result.version.version.slice(0, 12),
        deployed: result.deployed,
      },
      result.deployed
        ? 'policy file deployed'
        : 'policy file stored; the deployed version is kept (promote to change it)',
    );
  }
  await distributor.start();
  parkedGauge(registry, parked, POLICY_OUTBOX);
  const metrics = options.registry
    ? registerPolicyMetrics(options.registry, () => relay.backlog())
    : undefined;
  await consumeDecisions(bus, decisions, (reason) => log.warn(reason), metrics);
  await consumeRequests(bus, requests, (reason) => log.warn(reason));
  relay.start();
  const stopRetention = scheduleRetention(new SqlOperationalRetention(db), {
    days: config.policy.retentionDays,
    intervalMs: config.policy.retentionIntervalMs,
    onPruned: (pruned, cutoff) =>
      log.info({ ...pruned, before: cutoff.toISOString() }, 'policy retention: removed old working copies'),
    onError: (err) => log.warn({ err }, 'policy retention failed; will retry at the next pass'),
  });

  // Stops what has started: on close, and when the gRPC server cannot listen (a port taken), so that
  // the relay and the timers do not keep a failed start's process alive.
  const stopStarted = async (): Promise<void> => {
    await stopRetention();
    distributor.stop();
    unsubscribeBus?.();
    await relay.stop();
    if (ownsBus) await bus.close();
    await store.close();
    if (ownsDb) await db.close();
  };
  let grpc: Awaited<ReturnType<typeof startPolicyGrpc>> | undefined;
  if (grpcPort !== undefined && authorizeGateway) {
    grpc = await startPolicyGrpc(
      {
        distributor,
        admin,
        decisions,
        replay,
        log,
        authorize: authorizeGateway,
        databaseUp: async () => {
          await db.query('select 1');
          return true;
        },
      },
      config.host,
      grpcPort,
    ).catch(async (error: unknown) => {
      await stopStarted();
      throw error;
    });
  }
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  if (grpc) log.info({ grpc: `${host}:${grpc.port}` }, 'policy gRPC (bundle stream, admin API) listening');

  return {
    source: {
      subscribe: (onBundle) => distributor.subscribe(onBundle),
      fetchVersion: async (idOrPrefix) => {
        const v = await admin.versionById(idOrPrefix);
        return { name: v.name, version: v.version, document: v.document };
      },
    },
    http: policyRoutes({
      admin,
      distributor,
      decisions,
      replay,
      outbox: {
        parked,
        source: POLICY_SOURCE,
        record: async (event) => {
          await appendPolicyEvents(db, [event]);
          relay.wake();
        },
      },
    }),
    admin,
    decisions,
    replay,
    distributor,
    ...(grpc ? { grpcAddress: `${host}:${grpc.port}` } : {}),
    flushEvents: () => relay.publishPending(),
    async close() {
      await grpc?.close();
      await stopStarted();
    },
  };
}

function readPolicyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`Cannot read the policy file ${path} (policy.file): ${(error as Error).message}`);
  }
}

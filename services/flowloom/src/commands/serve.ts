import { parseArgs } from 'node:util';
import { auditOpenApi, startAudit } from '@flowloom/audit';
import { busCheck, type EventBus, KafkaBus } from '@flowloom/bus';
import { type Config, loadConfig } from '@flowloom/config';
import {
  type GatewayOptions,
  policyApiDocument,
  recordedAdminAuthorizer,
  registerPeerForwarding,
  startGateway,
} from '@flowloom/gateway';
import { startPolicyHttp, startPolicyService } from '@flowloom/policy';
import { openPostgres } from '@flowloom/store';
import { createRegistry, type Registry, registerBusGauges } from '@flowloom/telemetry';
import { type Command, type Io, UsageError } from '../command.js';

/** A service started on its own, as one process of a distributed install. */
interface Service {
  summary: string;
  /** `bus` is Kafka when brokers are configured; the caller closes it after the service. */
  start(
    config: Config,
    io: Io,
    bus: EventBus | undefined,
  ): Promise<{ close(): Promise<void>; describe: string }>;
}

/**
 * The Kafka bus, connecting in the background: a service starts and serves while the brokers are
 * unreachable (events wait in its outbox, consumers join once Kafka is up), and says so in /readyz.
 * A setting the brokers refuse (a replication factor above their number) still stops the start.
 */
async function kafkaBus(config: Config, clientId: string): Promise<KafkaBus | undefined> {
  if (!config.kafkaBrokers || config.kafkaBrokers.length === 0) return undefined;
  const bus = new KafkaBus({
    brokers: config.kafkaBrokers,
    clientId,
    partitions: config.kafkaTopics.partitions,
    replicationFactor: config.kafkaTopics.replicationFactor,
    topicPrefix: config.kafkaTopics.prefix,
  });
  try {
    await bus.startInBackground();
  } catch (error) {
    await bus.close();
    throw error;
  }
  return bus;
}

/** A standalone service's /metrics registry: process metrics, and the bus's state when it is Kafka. */
function serviceRegistry(bus: EventBus | undefined): Registry {
  const registry = createRegistry();
  if (bus?.health) registerBusGauges(() => bus.health?.(), registry);
  return registry;
}

/** How the start-up line names the bus. */
function busName(bus: EventBus | undefined): string {
  if (!bus) return 'the in-process bus';
  const health = bus.health?.();
  return health?.state === 'unavailable'
    ? `Kafka (${health.target}, not reachable yet: retrying in the background, see /readyz)`
    : 'Kafka';
}

/**
 * One URL for everything, as in `flowloom up`: a standalone gateway forwards the policy and audit
 * admin APIs to those services' HTTP addresses, and describes them in its OpenAPI document only then.
 */
export function peerForwarding(config: Config): Pick<GatewayOptions, 'plugins' | 'apiDocuments'> {
  const policy = config.policy.httpUrl;
  const audit = config.audit.httpUrl;
  return {
    plugins: [(app) => registerPeerForwarding(app, { policy, audit, timeoutMs: config.peerTimeoutMs })],
    apiDocuments: [...(policy ? [policyApiDocument] : []), ...(audit ? [auditOpenApi] : [])],
  };
}

const services: Record<string, Service> = {
  gateway: {
    summary: 'OpenAI/Anthropic/Gemini-compatible HTTP and gRPC inference, keys, routing, budgets, outbox',
    async start(config, io, bus) {
      const policyUrl = config.policy.httpUrl;
      const auditUrl = config.audit.httpUrl;
      const gateway = await startGateway({
        config,
        env: io.env,
        ...(bus ? { bus } : {}),
        ...peerForwarding(config),
        onAdminKeyGenerated: (secret) => io.out(`Bootstrap admin key (shown once): ${secret}`),
      });
      const forwarding = `policy API ${policyUrl ? `→ ${policyUrl}` : 'not forwarded (FLOWLOOM_POLICY_HTTP_URL)'}, audit API ${auditUrl ? `→ ${auditUrl}` : 'not forwarded (FLOWLOOM_AUDIT_HTTP_URL)'}`;
      return {
        describe: `gateway: HTTP ${gateway.httpUrl}, gRPC ${gateway.grpcAddress}, events on ${busName(bus)}, ${forwarding}`,
        close: async () => {
          await gateway.close();
        },
      };
    },
  },
  policy: {
    summary: 'policy versions, rollout and approval, bundle stream to gateways (gRPC), decisions, replay',
    async start(config, _io, bus) {
      const db = await openPostgres(config.databaseUrl ?? '');
      const admins = await recordedAdminAuthorizer(db, config, 'policy', bus);
      const authorize = admins.authorize;
      const registry = serviceRegistry(bus);
      const service = await startPolicyService({
        config,
        db,
        registry,
        ...(bus ? { bus } : {}),
        grpcPort: config.policy.grpcPort ?? config.grpcPort,
        authorizeGateway: authorize,
      });
      const http = await startPolicyHttp(
        async (app, authorize) => {
          app.get('/healthz', async () => ({ status: 'ok' }));
          app.get('/readyz', async (_request, reply) => {
            const checks: Record<string, string> = {};
            try {
              await db.query('select 1');
              checks.database = 'ok';
            } catch (error) {
              checks.database = `unavailable: ${(error as Error).message}`;
            }
            const health = bus?.health?.();
            // Bundles and the admin API need only the database: without Kafka the policy service
            // still serves, so a bus outage is reported but leaves it ready.
            if (health)
              checks.bus = busCheck(
                health,
                "gateways' decisions reach the decision store once it is back; bundles and the admin API are served meanwhile",
              );
            const ready = checks.database === 'ok';
            return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
          });
          await service.http(app, authorize);
        },
        authorize,
        config.host,
        config.httpPort,
        registry,
      );
      return {
        describe: `policy: HTTP ${http.url}, bundle stream ${service.grpcAddress ?? 'off'}, events on ${busName(bus)}`,
        close: async () => {
          await http.close();
          await service.close();
          await admins.close();
          await db.close();
        },
      };
    },
  },
  audit: {
    summary: 'the append-only Merkle ledger, signed checkpoints, proofs, evidence export, event search',
    async start(config, _io, bus) {
      const db = await openPostgres(config.databaseUrl ?? '');
      const admins = await recordedAdminAuthorizer(db, config, 'audit', bus);
      const audit = await startAudit({
        config,
        db,
        ...(bus ? { bus } : {}),
        authorizeAdmin: admins.authorize,
        registry: serviceRegistry(bus),
      });
      return {
        describe: `audit: HTTP ${audit.httpUrl}, gRPC ${audit.grpcAddress}, events from ${busName(bus)}`,
        close: async () => {
          await audit.close();
          await admins.close();
          await db.close();
        },
      };
    },
  },
};

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Run one service on its own (distributed mode: PostgreSQL, Kafka, Redis)',
  help: `Usage: flowloom serve <${Object.keys(services).join('|')}>

Starts one service as its own process, for a distributed install (Helm, docker compose). It reads the
same settings as \`flowloom up\`; in this mode you normally set:

  FLOWLOOM_DATABASE_URL   postgres://user:pass@host:5432/flowloom   (required)
  FLOWLOOM_KAFKA_BROKERS  host1:9092,host2:9092                     (events between services)
  FLOWLOOM_REDIS_URL      redis://host:6379                          (budgets shared by replicas)
  FLOWLOOM_POLICY_HTTP_URL, FLOWLOOM_AUDIT_HTTP_URL   http://policy:8080, http://audit:8080
                          (gateway: serves the policy and audit admin APIs on its own URL by
                          forwarding them there)

Services:
${Object.entries(services)
  .map(([name, s]) => `  ${name.padEnd(10)} ${s.summary}`)
  .join('\n')}`,
  async run(args, io) {
    const { positionals } = parseArgs({ args, allowPositionals: true, strict: true, options: {} });
    const name = positionals[0];
    const service = name ? services[name] : undefined;
    if (!service)
      throw new UsageError(name ? `unknown service "${name}"` : 'flowloom serve needs a service name');
    const config = loadConfig({ env: io.env });
    if (!config.databaseUrl) {
      throw new UsageError(
        'flowloom serve needs FLOWLOOM_DATABASE_URL (a postgres:// URL); for one process on embedded storage use flowloom up',
      );
    }
    const bus = await kafkaBus(config, `flowloom-${name}`);
    // The bus retries in the background: a start that fails must stop it, or the process stays up.
    const running = await service.start(config, io, bus).catch(async (error: unknown) => {
      await bus?.close();
      throw error;
    });
    io.out(`FlowLoom ${running.describe}`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    io.out('Shutting down: finishing in-flight requests…');
    await running.close();
    await bus?.close();
    return 0;
  },
};

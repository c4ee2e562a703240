import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freshDatabase } from './engines.js';
import { CLI, distributedServices, type Service, type ServiceEnvs } from './services.js';
import { tearDown } from './teardown.js';

const BROKERS = process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092';

/** `serve policy|audit|gateway` started on a database and Kafka topics of their own. */
export interface DistributedRun {
  readonly work: string;
  readonly gateway: Service;
  readonly policy: Service;
  readonly audit: Service;
  /** Stops the services, drops the database and deletes the work folder. */
  tearDown(): Promise<void>;
}

/**
 * A distributed install of one test file on the shared PostgreSQL (a fresh database, migrated) and
 * Kafka (topics prefixed `name`), policy and audit started before the gateway so that its bundle
 * stream and forwarding find them. `startupPolicy`, when given, is the policy the policy service loads
 * at start (FLOWLOOM_POLICY_FILE); `own` adds variables per service.
 */
export async function startDistributedRun(options: {
  name: string;
  admin: string;
  startupPolicy?: string;
  own?: ServiceEnvs;
}): Promise<DistributedRun> {
  const { name, admin, own = {} } = options;
  const work = mkdtempSync(join(tmpdir(), `flowloom-faults-${name}-`));
  const services: Service[] = [];
  let database: { url: string; drop(): Promise<void> } | undefined;
  const stop = () => tearDown({ services, database, work });
  try {
    database = await freshDatabase(`flowloom_faults_${name.replaceAll('-', '_')}`);
    const common: Record<string, string> = {
      FLOWLOOM_DATABASE_URL: database.url,
      FLOWLOOM_ADMIN_KEY: admin,
      FLOWLOOM_LOG_LEVEL: 'error',
      FLOWLOOM_KAFKA_BROKERS: BROKERS,
      // Topics of this run alone on the shared broker.
      FLOWLOOM_KAFKA_TOPIC_PREFIX: `${name}-${randomBytes(4).toString('hex')}`,
      FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '500',
    };
    await promisify(execFile)('node', [CLI, 'migrate'], { env: { ...process.env, ...common } });
    const policyEnv = { ...own.policy };
    if (options.startupPolicy !== undefined) {
      policyEnv.FLOWLOOM_POLICY_FILE = join(work, 'policy.yaml');
      writeFileSync(policyEnv.FLOWLOOM_POLICY_FILE, options.startupPolicy);
    }
    const trio = await distributedServices(common, work, { ...own, policy: policyEnv });
    services.push(trio.gateway, trio.policy, trio.audit);
    await Promise.all([trio.policy.start(), trio.audit.start()]);
    await trio.gateway.start();
    return { work, ...trio, tearDown: stop };
  } catch (error) {
    // beforeAll failed: afterAll has no run to tear down, so this does it.
    await stop();
    throw error;
  }
}

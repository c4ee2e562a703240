import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall } from '../bench/processes.js';
import { freshDatabase, type OwnPostgres, startOwnPostgres } from './engines.js';
import { Load } from './load.js';
import { CLI, type Service, serviceOnFreePorts } from './services.js';
import { until } from './until.js';

// The consumer lag of `flowloom serve audit` and `serve policy` on their /metrics
// (`flowloom_bus_consumer_lag_messages{group,topic,partition}`), read from the real Kafka: the audit
// service's ledger database (a PostgreSQL of this test's own) is stopped, so its consumer commits
// nothing while the gateway keeps publishing; its lag grows, and returns to 0 once the database is
// back and it caught up. The shared broker is used under a topic prefix of this test's own.

const ADMIN = 'flk_faults-consumer-lag-admin-0123456789ab';
const BROKERS = process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092';
const PREFIX = `faults-lag-${randomBytes(3).toString('hex')}`;
const REQUESTS = `${PREFIX}.gateway.request`;

let database: { url: string; drop(): Promise<void> } | undefined;
let ledgerPg: OwnPostgres | undefined;
let work = '';
const services: Service[] = [];
let gateway: Service;
let audit: Service;
let policy: Service;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'flowloom-faults-lag-'));
  [database, ledgerPg] = await Promise.all([
    freshDatabase('flowloom_faults_lag'),
    startOwnPostgres(`faults-lag-${randomBytes(3).toString('hex')}`),
  ]);
  const common: Record<string, string> = {
    FLOWLOOM_DATABASE_URL: database.url,
    FLOWLOOM_KAFKA_BROKERS: BROKERS,
    FLOWLOOM_KAFKA_TOPIC_PREFIX: PREFIX,
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'fatal',
    FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '60000',
  };
  const auditEnv = { ...common, FLOWLOOM_DATABASE_URL: ledgerPg.url('flowloom') };
  const migrate = (env: Record<string, string>) =>
    promisify(execFile)('node', [CLI, 'migrate'], { env: { ...process.env, ...env } });
  await Promise.all([migrate(common), migrate(auditEnv)]);
  gateway = await serviceOnFreePorts('gateway', 'gateway', common, work);
  policy = await serviceOnFreePorts('policy', 'policy', common, work);
  audit = await serviceOnFreePorts('audit', 'audit', auditEnv, work);
  services.push(gateway, policy, audit);
  await Promise.all(services.map((s) => s.start()));
}, 150_000);

afterAll(async () => {
  for (const service of services) await service.stop().catch(() => {});
  await ledgerPg?.purge().catch((error: Error) => console.error(error.message));
  await database?.drop();
  const admin = new Kafka({
    clientId: PREFIX,
    brokers: BROKERS.split(','),
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${PREFIX}.`));
  if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  await admin.disconnect();
  if (work) rmSync(work, { recursive: true, force: true });
}, 90_000);

/** The lag series of a service's /metrics: messages by `group topic partition`. */
async function lagSeries(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^flowloom_bus_consumer_lag_messages\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries(
      [...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]),
    );
    series.set(`${labels.group} ${labels.topic} ${labels.partition}`, Number(m[2]));
  }
  return series;
}

/** The lag of a group on the gateway's request topic, summed over its partitions. */
async function requestLag(url: string, group: string): Promise<number | undefined> {
  let sum: number | undefined;
  for (const [key, messages] of await lagSeries(url)) {
    const [g, topic] = key.split(' ');
    if (g === group && topic === REQUESTS) sum = (sum ?? 0) + messages;
  }
  return sum;
}

describe('consumer lag on the standalone services /metrics', () => {
  it('when the audit consumer cannot commit (its ledger database is down), then its lag grows on /metrics, and returns to 0 once it caught up', async () => {
    const began = Date.now();
    const auditGroup = `${PREFIX}.flowloom-audit`;
    const { key } = await adminCall<{ key: string }>(gateway.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'lag',
    });
    const send = async (count: number) => {
      const load = new Load({
        targets: () => [gateway.url],
        key,
        body: (n) => ({ model: 'flowloom-local', messages: [{ role: 'user', content: `lag ${n}` }] }),
        concurrency: 2,
      });
      try {
        await load.waitForAnswers(count);
      } finally {
        await load.stop();
      }
      return load.answered.length;
    };

    let sent = await send(20);
    // Every partition of every topic under the prefix, for the audit group; 0 once consumed.
    await until('the audit lag at 0 after the first requests', async () =>
      (await requestLag(audit.url, auditGroup)) === 0 ? true : undefined,
    );
    const series = await lagSeries(audit.url);
    expect([...series.keys()].filter((k) => k.startsWith(`${auditGroup} ${REQUESTS} `)).length).toBe(6);
    // The policy service reports its own group the same way.
    const policySeries = await until('the policy lag series', async () => {
      const s = await lagSeries(policy.url);
      return [...s.keys()].some((k) => k.includes(`${REQUESTS} `)) ? s : undefined;
    });
    expect([...policySeries.keys()].every((k) => !k.startsWith(`${auditGroup} `))).toBe(true);

    await ledgerPg!.stop();
    const behind = await send(40);
    sent += behind;
    const grown = await until(
      'the audit lag to hold every request sent while its database is down',
      async () => {
        const lag = await requestLag(audit.url, auditGroup);
        return lag !== undefined && lag >= behind ? lag : undefined;
      },
      45_000,
    );
    const stuckSeconds = (Date.now() - began) / 1000;

    await ledgerPg!.start();
    await until(
      'the audit lag back at 0',
      async () => ((await requestLag(audit.url, auditGroup)) === 0 ? true : undefined),
      90_000,
    );
    console.log(
      `[faults] consumer lag: ${sent} requests; with the ledger database down the audit group's lag on ${REQUESTS} reached ${grown} (${behind} sent meanwhile) at ${stuckSeconds.toFixed(1)} s; back at 0 ${((Date.now() - began) / 1000 - stuckSeconds).toFixed(1)} s after the database returned`,
    );
    expect(grown).toBeGreaterThanOrEqual(behind);
  }, 240_000);
});

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Db, openPostgres } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall } from '../bench/processes.js';
import { freshDatabase, type OwnKafka, ownKafka } from './engines.js';
import { completedInLedger, ledgerHolding } from './ledger.js';
import { Load } from './load.js';
import { metricOf, migrate, type Service, serviceOnFreePorts } from './services.js';
import { tearDown } from './teardown.js';
import { until } from './until.js';

// Kafka down when the distributed services start: `flowloom serve gateway|audit|policy` are pointed
// at the brokers of a Kafka of this test's own that is not running yet. Every service must start and
// serve; the gateway answers requests, keeping their events in its durable outbox; /readyz and
// /metrics say the bus is down and what to do. Then Kafka starts, and every answered request's event
// must reach the audit ledger exactly once, without restarting anything.

const ADMIN = 'flk_faults-kafka-start-admin-0123456789abcd';

let kafka: OwnKafka | undefined;
let database: { url: string; drop(): Promise<void> } | undefined;
let db: Db | undefined;
let work = '';
const services: Service[] = [];
let gateway: Service;
let audit: Service;
let policy: Service;

const ask = (n: number) => ({
  model: 'flowloom-local',
  messages: [{ role: 'user', content: `request ${n} while Kafka is down` }],
});

async function readyz(service: Service): Promise<{ status: number; checks: Record<string, string> }> {
  const response = await fetch(`${service.url}/readyz`);
  const body = (await response.json()) as { checks?: Record<string, string> };
  return { status: response.status, checks: body.checks ?? {} };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'flowloom-faults-kafka-start-'));
  kafka = await ownKafka(`faults-start-${randomBytes(3).toString('hex')}`);
  database = await freshDatabase('flowloom_faults_kstart');
  const common: Record<string, string> = {
    FLOWLOOM_DATABASE_URL: database.url,
    FLOWLOOM_KAFKA_BROKERS: kafka.brokers,
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'error',
    FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '60000',
  };
  await migrate(common);
  gateway = await serviceOnFreePorts('gateway', 'gateway', common, work);
  audit = await serviceOnFreePorts('audit', 'audit', common, work);
  policy = await serviceOnFreePorts('policy', 'policy', common, work);
  services.push(gateway, audit, policy);
  db = await openPostgres(database.url, { max: 2 });
}, 60_000);

afterAll(() => tearDown({ services, db, kafka, database, work }), 60_000);

describe('distributed services started while Kafka is down', () => {
  it('when Kafka is unreachable at start, then every service starts, the gateway answers and says the bus is degraded, and once Kafka is up every answered request reaches the ledger exactly once', async () => {
    const began = Date.now();
    await Promise.all(services.map((s) => s.start()));
    const startSeconds = (Date.now() - began) / 1000;

    // The gateway serves, ready; the bus line says what is wrong and what to do.
    const { key } = await adminCall<{ key: string }>(gateway.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'kafka-down',
    });
    const load = new Load({ targets: () => [gateway.url], key, body: ask, concurrency: 2 });
    try {
      await load.waitForAnswers(30);
    } finally {
      await load.stop();
    }
    expect(load.answers.filter((a) => a.status !== 200)).toEqual([]);
    const down = await readyz(gateway);
    expect(down.status).toBe(200);
    expect(down.checks.bus).toMatch(/^degraded: Kafka at 127\.0\.0\.1:\d+ unreachable since /);
    expect(down.checks.bus).toContain('wait in the outbox');
    expect(down.checks.bus).toContain('FLOWLOOM_KAFKA_BROKERS');
    expect(await metricOf(gateway.url, 'flowloom_bus_connected')).toBe(0);
    expect(await metricOf(gateway.url, 'flowloom_bus_unavailable_seconds')).toBeGreaterThan(0);
    expect(await metricOf(gateway.url, 'flowloom_outbox_backlog_events')).toBeGreaterThanOrEqual(30);
    // Policy serves bundles and its API without Kafka: ready, degraded. The audit consumer cannot
    // consume: not ready, saying why.
    const policyDown = await readyz(policy);
    expect(policyDown.status).toBe(200);
    expect(policyDown.checks.bus).toMatch(/^degraded: Kafka at .* unreachable since /);
    const auditDown = await readyz(audit);
    expect(auditDown.status).toBe(503);
    expect(auditDown.checks).toMatchObject({ database: 'ok' });
    expect(auditDown.checks.bus).toMatch(
      /^degraded: Kafka at .* unreachable since .*flowloom-audit waiting for Kafka/,
    );
    expect((await completedInLedger(db!)).size).toBe(0);
    // The standalone policy and audit services say so on their own /metrics too.
    for (const service of [policy, audit]) {
      expect(await metricOf(service.url, 'flowloom_bus_connected'), service.name).toBe(0);
      expect(await metricOf(service.url, 'flowloom_bus_unavailable_seconds'), service.name).toBeGreaterThan(
        0,
      );
    }

    const kafkaBegan = Date.now();
    await kafka!.start();
    const kafkaSeconds = (Date.now() - kafkaBegan) / 1000;
    const answered = load.answered;
    const entries = await ledgerHolding(db!, answered, 60_000);
    const deliveredSeconds = (Date.now() - kafkaBegan) / 1000 - kafkaSeconds;
    expect(answered.filter((a) => entries.get(a.requestId ?? '') !== 1)).toEqual([]);
    expect(entries.size).toBe(answered.length);
    // Everything reports healthy again, without a restart.
    await until('the gateway bus check ok', async () =>
      (await readyz(gateway)).checks.bus === 'ok' ? true : undefined,
    );
    expect(await metricOf(gateway.url, 'flowloom_bus_connected')).toBe(1);
    expect(await metricOf(gateway.url, 'flowloom_outbox_backlog_events')).toBe(0);
    await until('the audit service ready', async () =>
      (await readyz(audit)).status === 200 ? true : undefined,
    );
    expect(await metricOf(audit.url, 'flowloom_bus_connected')).toBe(1);
    expect(await metricOf(audit.url, 'flowloom_bus_unavailable_seconds')).toBe(0);
    expect(await metricOf(audit.url, 'flowloom_audit_tree_size')).toBeGreaterThanOrEqual(entries.size);
    // Each service reconnects on its own back-off (up to 5 s).
    await until('the policy service bus check ok', async () =>
      (await readyz(policy)).checks.bus === 'ok' ? true : undefined,
    );

    // Killed again while nothing is published: the idle services find out by themselves, and recover.
    await kafka!.kill();
    const killedAt = Date.now();
    await until(
      'the idle gateway to notice Kafka is gone',
      async () => ((await readyz(gateway)).checks.bus?.startsWith('degraded: Kafka at') ? true : undefined),
      20_000,
    );
    const noticedSeconds = (Date.now() - killedAt) / 1000;
    await until(
      'the audit service to be not ready',
      async () => ((await readyz(audit)).status === 503 ? true : undefined),
      30_000,
    );
    await kafka!.start();
    await until('the gateway bus check ok again', async () =>
      (await readyz(gateway)).checks.bus === 'ok' ? true : undefined,
    );
    await until('the audit service ready again', async () =>
      (await readyz(audit)).status === 200 ? true : undefined,
    );
    console.log(
      `[faults] Kafka killed under idle services: the gateway said so in ${noticedSeconds.toFixed(1)} s; all ready again after its restart`,
    );
    console.log(
      `[faults] Kafka down at start: 3 services started in ${startSeconds.toFixed(1)} s without it; ${answered.length} requests answered meanwhile; Kafka up in ${kafkaSeconds.toFixed(1)} s, every event in the ledger exactly once ${deliveredSeconds.toFixed(1)} s later`,
    );
  }, 150_000);
});

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Db, openPostgres } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall } from '../bench/processes.js';
import { freshDatabase, type OwnKafka, startOwnKafka } from './engines.js';
import { completedInLedger, ledgerHolding } from './ledger.js';
import { Load } from './load.js';
import { metricOf, migrate, type Service, serviceOnFreePorts } from './services.js';
import { tearDown } from './teardown.js';
import { until } from './until.js';

// A gateway killed (SIGKILL) while Kafka is down, and started again before Kafka is back: the events
// of the requests it answered wait in the shared PostgreSQL outbox; the restarted process must start
// and serve without Kafka (the bus connects in the background), and once Kafka returns every answered
// request's event, those of the killed process included, must reach the audit ledger exactly once.

const ADMIN = 'flk_faults-gw-restart-kafka-down-0123456789';

let kafka: OwnKafka | undefined;
let database: { url: string; drop(): Promise<void> } | undefined;
let db: Db | undefined;
let work = '';
const services: Service[] = [];
let gatewayA: Service;
let gatewayB: Service;

const ask = (n: number) => ({
  model: 'flowloom-local',
  messages: [{ role: 'user', content: `request ${n}` }],
});

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'flowloom-faults-gw-restart-'));
  const common: Record<string, string> = {
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'error',
    FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '60000',
  };
  await Promise.all([
    startOwnKafka(`faults-gwr-${randomBytes(3).toString('hex')}`).then((started) => {
      kafka = started;
      common.FLOWLOOM_KAFKA_BROKERS = started.brokers;
    }),
    freshDatabase('flowloom_faults_gwr').then(async (fresh) => {
      database = fresh;
      common.FLOWLOOM_DATABASE_URL = fresh.url;
      await migrate(common);
    }),
  ]);
  gatewayA = await serviceOnFreePorts('gateway-a', 'gateway', common, work);
  gatewayB = await serviceOnFreePorts('gateway-b', 'gateway', common, work);
  const audit = await serviceOnFreePorts('audit', 'audit', common, work);
  const policy = await serviceOnFreePorts('policy', 'policy', common, work);
  services.push(gatewayA, gatewayB, audit, policy);
  await Promise.all(services.map((s) => s.start()));
  db = await openPostgres(common.FLOWLOOM_DATABASE_URL!, { max: 2 });
}, 170_000);

afterAll(() => tearDown({ services, db, kafka, database, work }), 90_000);

/** Events still in the shared outbox, not yet published. */
async function outboxBacklog(): Promise<number> {
  const { rows } = await db!.query<{ n: number }>(
    'select count(*)::int as n from outbox where published_at is null',
  );
  return rows[0]?.n ?? 0;
}

describe('a gateway killed and restarted while Kafka is down', () => {
  it('when a gateway is killed with unpublished events and restarted before Kafka returns, then it starts and serves, and once Kafka is back every answered request is in the ledger exactly once', async () => {
    const began = Date.now();
    const { key } = await adminCall<{ key: string }>(gatewayA.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'gw-restart',
    });
    let live = [gatewayA.url, gatewayB.url];
    const load = new Load({ targets: () => live, key, body: ask, concurrency: 4 });
    const counts: string[] = [];
    // Each phase counts the answers from its start to the next phase's start.
    let mark = 0;
    const phase = (name: string) => {
      counts.push(`${name} ${load.answered.length - mark}`);
      mark = load.answered.length;
    };
    let restartSeconds = 0;
    try {
      await load.waitForAnswers(30);
      phase('before the fault:');
      await kafka!.kill();
      await load.waitForAnswers(60);

      // B answered some of those: their events are only in the outbox now.
      const onB = load.answered.filter((a) => a.target === gatewayB.url).length;
      expect(onB).toBeGreaterThan(0);
      expect(await outboxBacklog()).toBeGreaterThan(0);

      // As a load balancer would once B's health check fails; requests in flight on B are lost.
      live = [gatewayA.url];
      phase('Kafka down:');
      await gatewayB.kill();
      await load.waitForAnswers(20);
      await gatewayB.start();
      restartSeconds = gatewayB.startSeconds;
      // Restarted with Kafka still down: it serves, and says the bus is degraded.
      const ready = await fetch(`${gatewayB.url}/readyz`);
      const checks = ((await ready.json()) as { checks: Record<string, string> }).checks;
      expect(ready.status).toBe(200);
      expect(checks.bus).toMatch(/^degraded: Kafka at /);
      expect(await metricOf(gatewayB.url, 'flowloom_bus_connected')).toBe(0);
      phase('B dead, Kafka down:');
      live = [gatewayA.url, gatewayB.url];
      const answeredByB = () => load.answered.filter((a) => a.target === gatewayB.url).length;
      const beforeRestartOnB = answeredByB();
      // The restarted B answers too, not only A.
      await until('the restarted gateway to answer 20 requests', async () =>
        answeredByB() >= beforeRestartOnB + 20 ? true : undefined,
      );
      expect((await completedInLedger(db!)).size).toBeLessThan(load.answered.length);
    } finally {
      await load.stop();
    }
    phase('B restarted, Kafka down:');
    const backlog = await outboxBacklog();

    const kafkaBegan = Date.now();
    await kafka!.start();
    const kafkaSeconds = (Date.now() - kafkaBegan) / 1000;
    const answered = load.answered;
    const entries = await ledgerHolding(db!, answered, 90_000);
    const deliveredSeconds = (Date.now() - kafkaBegan) / 1000 - kafkaSeconds;
    const once = answered.filter((a) => entries.get(a.requestId ?? '') === 1);
    const duplicated = answered.filter((a) => (entries.get(a.requestId ?? '') ?? 0) > 1);
    const unanswered = load.answers.filter((a) => a.status !== 200);
    console.log(
      [
        `[faults] gateway restarted while Kafka is down: ${load.answers.length} requests through 2 replicas, ${answered.length} answered (${counts.join(', ')}), ${unanswered.length} not`,
        `[faults]   ${backlog} events waiting in the outbox when Kafka came back (up in ${kafkaSeconds.toFixed(1)} s); gateway B restarted in ${restartSeconds.toFixed(1)} s without Kafka`,
        `[faults]   ledger: ${once.length} answered requests exactly once, ${duplicated.length} duplicated, ${entries.size} in all, complete ${deliveredSeconds.toFixed(1)} s after Kafka was up; ${((Date.now() - began) / 1000).toFixed(1)} s in all`,
      ].join('\n'),
    );
    expect(duplicated.map((a) => a.requestId)).toEqual([]);
    expect(once.length).toBe(answered.length);
    // A request B answered upstream as it was killed has its event without its caller's answer; none twice.
    expect([...entries.values()].filter((n) => n !== 1)).toEqual([]);
    expect(entries.size).toBeGreaterThanOrEqual(answered.length);
    // Only requests caught on the killed gateway may go unanswered.
    expect(unanswered.filter((a) => a.target !== gatewayB.url)).toEqual([]);
    expect(backlog).toBeGreaterThan(0);
  }, 240_000);
});

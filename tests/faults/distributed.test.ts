import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Db, openPostgres } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, freePort } from '../bench/processes.js';
import { budgetConfig } from './budget-config.js';
import { freshDatabase, type OwnKafka, startOwnKafka } from './engines.js';
import { type Answer, Load } from './load.js';
import { CLI, Service } from './services.js';
import { tearDown } from './teardown.js';

// Distributed mode under faults, as installed: two `flowloom serve gateway` replicas and `flowloom
// serve audit`, each a process of its own, on PostgreSQL, Redis and a Kafka broker of this test's own
// (the shared one on 9092 serves the other test files and is never killed). Under load through both
// replicas, the audit consumer, Kafka and one gateway are killed (SIGKILL) and restarted in turn; then
// every answered request must be in the audit ledger exactly once. In the same run a second caller
// spends a capped project's budget through both replicas, across the kills: its spend must stay within
// the limit plus one reservation, as README's Distributed mode says.

const ADMIN = 'flk_faults-distributed-admin-0123456789abcdef';
const REDIS_URL = process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const COMPLETED = 'dev.flowloom.gateway.request.completed.v1';
// The local provider, scripted to 10 input and 50 output tokens, priced at $1000 per million: $0.06 a
// request. A request reserves its worst case first: the estimated prompt (< 40 tokens) + max_tokens.
const PRICE_PER_MILLION = 1000;
const MAX_TOKENS = 50;
const RESERVATION_USD = ((40 + MAX_TOKENS) * PRICE_PER_MILLION) / 1_000_000;
// 200 answers at about 8 a second (2 connections pausing 250 ms): spent while the kills go on.
const CAPPED_LIMIT_USD = 12;
const CAPPED_CONCURRENCY = 2;
const CAPPED_PAUSE_MS = 250;
// Budget counters live in the shared Redis and outlive a run (period total): a project of this run's own.
const CAPPED_PROJECT = `capped-${randomBytes(4).toString('hex')}`;

const ask = (n: number) => ({
  model: 'flowloom-local',
  max_tokens: MAX_TOKENS,
  messages: [
    {
      role: 'user',
      content: `request ${n}\nflowloom-local: {"reply":"ok","inputTokens":10,"outputTokens":50}`,
    },
  ],
});

let kafka: OwnKafka | undefined;
let database: { url: string; drop(): Promise<void> } | undefined;
let db: Db | undefined;
let work = '';
let audit: Service;
let gatewayA: Service;
let gatewayB: Service;
const services: Service[] = [];

beforeAll(async () => {
  const started = Date.now();
  work = mkdtempSync(join(tmpdir(), 'flowloom-faults-distributed-'));
  const config = budgetConfig(work, PRICE_PER_MILLION, {
    project: CAPPED_PROJECT,
    period: 'total',
    limitUsd: CAPPED_LIMIT_USD,
  });
  const common: Record<string, string> = {
    FLOWLOOM_REDIS_URL: REDIS_URL,
    FLOWLOOM_CONFIG: config,
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'warn',
    // A checkpoint now and then is enough here; the ledger's appends are what is tested.
    FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '60000',
  };
  // The broker's JVM starts while the database is made and migrated.
  await Promise.all([
    startOwnKafka(`faults-${randomBytes(3).toString('hex')}`).then((started) => {
      kafka = started;
      common.FLOWLOOM_KAFKA_BROKERS = started.brokers;
    }),
    freshDatabase('flowloom_faults').then(async (fresh) => {
      database = fresh;
      common.FLOWLOOM_DATABASE_URL = fresh.url;
      await promisify(execFile)('node', [CLI, 'migrate'], { env: { ...process.env, ...common } });
    }),
  ]);
  const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  const [auditHttp, auditGrpc, aHttp, aGrpc, bHttp, bGrpc] = ports as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  audit = new Service(
    'audit',
    'audit',
    {
      ...common,
      FLOWLOOM_DATA_DIR: join(work, 'audit'),
      FLOWLOOM_AUDIT_HTTP_PORT: String(auditHttp),
      FLOWLOOM_AUDIT_GRPC_PORT: String(auditGrpc),
    },
    `http://127.0.0.1:${auditHttp}`,
  );
  const gateway = (name: string, http: number, grpc: number) =>
    new Service(
      name,
      'gateway',
      {
        ...common,
        FLOWLOOM_DATA_DIR: join(work, name),
        FLOWLOOM_HTTP_PORT: String(http),
        FLOWLOOM_GRPC_PORT: String(grpc),
      },
      `http://127.0.0.1:${http}`,
    );
  gatewayA = gateway('gateway-a', aHttp, aGrpc);
  gatewayB = gateway('gateway-b', bHttp, bGrpc);
  services.push(audit, gatewayA, gatewayB);
  await Promise.all(services.map((service) => service.start()));
  db = await openPostgres(common.FLOWLOOM_DATABASE_URL!, { max: 2 });
  console.log(`[faults] distributed stack up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 170_000);

afterAll(() => tearDown({ services, db, kafka, database, work }), 120_000);

/** Ledger entries of completed requests, by request id. */
async function ledger(): Promise<Map<string, { n: number; costUsd: number; project: string | null }>> {
  const { rows } = await db!.query<{ request_id: string; n: number; cost: number; project: string | null }>(
    `select entry::jsonb->'data'->>'requestId' as request_id, count(*)::int as n,
            sum((entry::jsonb->'data'->>'costUsd')::float8) as cost, max(project) as project
       from audit_entries where event_type = $1 and not pruned group by 1`,
    [COMPLETED],
  );
  return new Map(rows.map((r) => [r.request_id, { n: r.n, costUsd: r.cost, project: r.project }]));
}

/** Waits until every answered request is in the ledger; returns the last reading. */
async function ledgerHolding(answered: readonly Answer[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entries = await ledger();
    const missing = answered.filter((a) => !entries.has(a.requestId ?? ''));
    if (missing.length === 0 || Date.now() > deadline) return { entries, missing };
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function phase(log: string[], load: Load, name: string, fault: () => Promise<string>): Promise<void> {
  const started = Date.now();
  const answered = load.answered.length;
  const total = load.answers.length;
  const note = await fault();
  log.push(
    `${name} (${note}): ${load.answered.length - answered} answered, ${load.answers.length - total - (load.answered.length - answered)} not, in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

describe('distributed mode under faults', () => {
  it('when the audit consumer, Kafka and a gateway are killed and restarted in turn under load through two replicas, then every answered request is in the ledger exactly once, the log verifies, and the budget of a capped project spent through both replicas holds within its limit plus one reservation', async () => {
    const started = Date.now();
    const { key } = await adminCall<{ key: string }>(gatewayA.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'faults',
      project: 'faults',
    });
    const { key: cappedKey } = await adminCall<{ key: string }>(gatewayA.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'capped',
      project: CAPPED_PROJECT,
    });
    let live = [gatewayA.url, gatewayB.url];
    const load = new Load({ targets: () => live, key, body: ask, concurrency: 4 });
    const capped = new Load({
      targets: () => live,
      key: cappedKey,
      body: ask,
      concurrency: CAPPED_CONCURRENCY,
      pauseMs: CAPPED_PAUSE_MS,
    });
    const log: string[] = [];
    try {
      await load.waitForAnswers(20);
      await phase(log, load, 'audit consumer killed and restarted', async () => {
        await audit.kill();
        await load.waitForAnswers(40);
        await audit.start();
        await load.waitForAnswers(20);
        return `restart ${audit.startSeconds.toFixed(1)} s`;
      });
      await phase(log, load, 'Kafka killed and restarted', async () => {
        await kafka!.kill();
        await load.waitForAnswers(40);
        const began = Date.now();
        await kafka!.start();
        const seconds = (Date.now() - began) / 1000;
        await load.waitForAnswers(20);
        return `restart ${seconds.toFixed(1)} s`;
      });
      await phase(log, load, 'gateway B killed and restarted', async () => {
        // As a load balancer would, once its health check fails: requests in flight on B are lost.
        live = [gatewayA.url];
        await gatewayB.kill();
        await load.waitForAnswers(40);
        await gatewayB.start();
        live = [gatewayA.url, gatewayB.url];
        await load.waitForAnswers(20);
        return `restart ${gatewayB.startSeconds.toFixed(1)} s`;
      });
      await load.stop();
      // The capped caller goes on until its budget refuses it, should the kills have been quicker.
      const deadline = Date.now() + 60_000;
      while (!capped.answers.some((a) => a.code === 'budget_exceeded') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
    } finally {
      await Promise.all([load.stop(), capped.stop()]);
    }
    const loadSeconds = (Date.now() - started) / 1000;
    // Every answered request of both callers, the capped one's included, must reach the ledger once.
    const answered = [...load.answered, ...capped.answered];
    const { entries, missing } = await ledgerHolding(answered, 90_000);
    const duplicated = answered.filter((a) => (entries.get(a.requestId ?? '')?.n ?? 0) > 1);
    const once = answered.filter((a) => entries.get(a.requestId ?? '')?.n === 1);
    const byStatus = new Map<string, number>();
    for (const a of [...load.answers, ...capped.answers])
      byStatus.set(String(a.status), (byStatus.get(String(a.status)) ?? 0) + 1);
    console.log(
      [
        `[faults] distributed: ${load.answers.length + capped.answers.length} requests through 2 gateway replicas, ${answered.length} answered (by status: ${[...byStatus].map(([s, n]) => `${s}×${n}`).join(', ')})`,
        ...log.map((line) => `[faults]   ${line}`),
        `[faults]   ledger: ${once.length} answered requests exactly once, ${missing.length} missing, ${duplicated.length} duplicated; ${entries.size} completed requests in the ledger in all`,
        `[faults]   load ${loadSeconds.toFixed(1)} s, ledger complete ${((Date.now() - started) / 1000 - loadSeconds).toFixed(1)} s later`,
      ].join('\n'),
    );
    const spent = capped.answered.reduce((sum, a) => sum + (entries.get(a.requestId ?? '')?.costUsd ?? 0), 0);
    const refused = capped.answers.filter((a) => a.code === 'budget_exceeded');
    const cappedPerReplica = [gatewayA.url, gatewayB.url].map(
      (url) => capped.answered.filter((a) => a.target === url).length,
    );
    console.log(
      `[faults]   budget: $${CAPPED_LIMIT_USD} for project "${CAPPED_PROJECT}" spent through 2 replicas with ${CAPPED_CONCURRENCY} connections across the kills: ` +
        `${capped.answered.length} answered (${cappedPerReplica.join(' + ')}), ${refused.length} refused with budget_exceeded, ` +
        `$${spent.toFixed(4)} in the ledger (limit + one reservation = $${(CAPPED_LIMIT_USD + RESERVATION_USD).toFixed(4)})`,
    );
    // Kills mid-append must not have damaged the log: it verifies end to end at a fresh checkpoint.
    await adminCall(audit.url, ADMIN, 'POST', '/api/v1/audit/checkpoints');
    const verified = await promisify(execFile)(
      'node',
      [CLI, 'audit', 'verify', '--database-url', database!.url],
      {
        env: { ...process.env, FLOWLOOM_LOG_LEVEL: 'warn' },
      },
    );
    console.log(`[faults]   audit verify: ${verified.stdout.trim().split('\n').pop()}`);
    expect(missing.map((a) => `${a.requestId} via ${a.target}`)).toEqual([]);
    expect(duplicated.map((a) => a.requestId)).toEqual([]);
    expect(once.length).toBe(answered.length);
    // The only requests left unanswered are those caught on the killed gateway.
    expect(load.answers.filter((a) => a.status !== 200 && a.target !== gatewayB.url)).toEqual([]);
    // The budget held across both replicas and the kills: refused once spent, and never past the limit by
    // more than one reservation.
    expect(refused.length).toBeGreaterThan(0);
    expect(cappedPerReplica.every((n) => n > 0)).toBe(true);
    expect(
      capped.answers.filter(
        (a) => a.status !== 200 && a.code !== 'budget_exceeded' && a.target !== gatewayB.url,
      ),
    ).toEqual([]);
    expect(spent).toBeLessThanOrEqual(CAPPED_LIMIT_USD + RESERVATION_USD);
    // Really spent, not refused early: short of the limit by less than one reservation, plus those a
    // killed gateway held (they stay reserved) and those answered upstream but lost with it.
    expect(spent).toBeGreaterThan(CAPPED_LIMIT_USD - (CAPPED_CONCURRENCY + 1) * RESERVATION_USD);
  }, 170_000);
});

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Db, openPostgres } from '@flowloom/store';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpGate } from '../../services/gateway/test/tcp-gate.js';
import { adminCall, freePort } from '../bench/processes.js';
import { budgetConfig } from './budget-config.js';
import { freshDatabase } from './engines.js';
import { Load } from './load.js';
import { metricOf, migrate, type Service, serviceOnFreePorts } from './services.js';
import { tearDown } from './teardown.js';
import { until } from './until.js';

// Two `flowloom serve gateway` replicas on one PostgreSQL, reaching the real Redis through a relay
// that is cut (Redis keeps its data; the replicas see it unreachable). With limitsFallback local both
// count a project's budget locally meanwhile, journaling it in PostgreSQL every second. Replica B is
// killed (SIGKILL) during the outage; once Redis is back, replica A hands over B's journaled spend
// with its own: the budget counter in Redis must hold every answered request's cost exactly once.

const ADMIN = 'flk_faults-limits-journal-admin-0123456789';
const REDIS_URL = new URL(process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
// The local provider scripted to 10 input and 50 output tokens at $1000 per million: $0.06 a request.
const PRICE_PER_MILLION = 1000;
const MICROS_PER_REQUEST = 60_000;
// Budget counters in the shared Redis outlive a run: a project of this run's own.
const PROJECT = `journal-${randomBytes(4).toString('hex')}`;

const ask = (n: number) => ({
  model: 'flowloom-local',
  max_tokens: 50,
  messages: [
    {
      role: 'user',
      content: `request ${n}\nflowloom-local: {"reply":"ok","inputTokens":10,"outputTokens":50}`,
    },
  ],
});

let database: { url: string; drop(): Promise<void> } | undefined;
let db: Db | undefined;
let redis: Redis | undefined;
let gate: TcpGate;
let work = '';
const services: Service[] = [];
let gatewayA: Service;
let gatewayB: Service;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'flowloom-faults-journal-'));
  gate = new TcpGate(await freePort(), { host: REDIS_URL.hostname, port: Number(REDIS_URL.port || 6379) });
  await gate.open();
  const config = budgetConfig(work, PRICE_PER_MILLION, {
    project: PROJECT,
    period: 'month',
    limitUsd: 1000000,
  });
  database = await freshDatabase('flowloom_faults_journal');
  const common: Record<string, string> = {
    FLOWLOOM_DATABASE_URL: database.url,
    FLOWLOOM_REDIS_URL: `redis://127.0.0.1:${gate.port}`,
    FLOWLOOM_LIMITS_FALLBACK: 'local',
    FLOWLOOM_CONFIG: config,
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'error',
  };
  await migrate(common);
  gatewayA = await serviceOnFreePorts('gateway-a', 'gateway', common, work);
  gatewayB = await serviceOnFreePorts('gateway-b', 'gateway', common, work);
  services.push(gatewayA, gatewayB);
  await Promise.all(services.map((s) => s.start(60_000)));
  db = await openPostgres(database.url, { max: 2 });
  redis = new Redis(REDIS_URL.href, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
}, 120_000);

afterAll(async () => {
  await gate?.cut();
  redis?.disconnect();
  await tearDown({ services, db, database, work });
}, 60_000);

/** The project's budget spend in Redis (micro-USD), summed over its counters (one per month). */
async function spentInRedis(): Promise<number> {
  const keys = await redis!.keys(`flowloom:budget:project:${PROJECT}:*`);
  const values = keys.length === 0 ? [] : await redis!.mget(...keys);
  return values.reduce((sum, v) => sum + Number(v ?? 0), 0);
}

/** The project's budget spend in the limits journal, not yet handed over. */
async function spentInJournal(): Promise<{ micros: number; batches: number }> {
  const { rows } = await db!.query<{ micros: string | null; batches: number }>(
    `select sum((c->>'value')::bigint)::text as micros, count(distinct j.id)::int as batches
       from limits_journal j, jsonb_array_elements(j.counters) c
      where c->>'key' like $1`,
    [`budget:project:${PROJECT}:%`],
  );
  return { micros: Number(rows[0]?.micros ?? 0), batches: rows[0]?.batches ?? 0 };
}

async function limitsCheck(service: Service): Promise<string> {
  const body = (await (await fetch(`${service.url}/readyz`)).json()) as { checks: Record<string, string> };
  return body.checks.limits ?? '';
}

describe('a gateway replica killed during a Redis outage', () => {
  it('when a replica that counted budget spend locally is killed before Redis returns, then its journaled spend reaches Redis exactly once through the other replica', async () => {
    const began = Date.now();
    const { key } = await adminCall<{ key: string }>(gatewayA.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'journal',
      project: PROJECT,
    });
    const both = [gatewayA.url, gatewayB.url];
    const run = async (targets: string[], count: number) => {
      const load = new Load({ targets: () => targets, key, body: ask, concurrency: 2 });
      try {
        await load.waitForAnswers(count);
      } finally {
        await load.stop();
      }
      expect(load.answers.filter((a) => a.status !== 200)).toEqual([]);
      return load.answered;
    };

    const before = await run(both, 10);
    expect(await spentInRedis()).toBe(before.length * MICROS_PER_REQUEST);

    await gate.cut();
    const during = await run(both, 40);
    await until('both replicas to use local limits', async () =>
      (await limitsCheck(gatewayA)).startsWith('degraded:') &&
      (await limitsCheck(gatewayB)).startsWith('degraded:')
        ? true
        : undefined,
    );
    const onB = during.filter((a) => a.target === gatewayB.url).length;
    expect(onB).toBeGreaterThan(0);
    // Every answered request is counted in Redis (before the cut) or in the journal (within a second).
    const answeredSoFar = (before.length + during.length) * MICROS_PER_REQUEST;
    const journaled = await until('the local counts journaled', async () => {
      const j = await spentInJournal();
      return (await spentInRedis()) + j.micros === answeredSoFar ? j : undefined;
    });
    await gatewayB.kill();

    await gate.open();
    // A finds Redis back by itself (its readiness probe, within its 5 s back-off) and hands over.
    await until(
      'replica A back on Redis with the journal handed over',
      async () =>
        (await limitsCheck(gatewayA)) === 'ok' && (await spentInJournal()).batches === 0 ? true : undefined,
      30_000,
    );
    const after = await run([gatewayA.url], 10);
    const answered = before.length + during.length + after.length;
    const spent = await spentInRedis();
    const handedOver = (await metricOf(gatewayA.url, 'flowloom_limits_handed_over_counters_total')) ?? 0;
    console.log(
      `[faults] limits journal: ${answered} requests answered (${before.length} before the Redis outage, ${during.length} during it, ${onB} of them by the replica killed during it, ${after.length} after); ${journaled.batches} journal batches held $${(journaled.micros / 1e6).toFixed(2)} when it died; Redis holds $${(spent / 1e6).toFixed(2)} for $${((answered * MICROS_PER_REQUEST) / 1e6).toFixed(2)} answered; ${handedOver} counters handed over by the survivor; ${((Date.now() - began) / 1000).toFixed(1)} s`,
    );
    expect(spent).toBe(answered * MICROS_PER_REQUEST);
    expect(handedOver).toBeGreaterThan(0);
  }, 120_000);
});

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Db, openPostgres } from '@flowloom/store';
import { Redis } from 'ioredis';
import { BENCH_LIMITS_YAML } from './limits-config.js';
import { type Figure, fixedRate, overheadFigures, type Target, throughputFigures } from './load.js';
import { adminCall, type Child, cpuMicros, freePort, startChild, startMockUpstream } from './processes.js';
import { mainThreadWindow } from './runtime-metrics.js';

// Distributed mode, as installed: `flowloom serve gateway|policy|audit`, each a process of its own on
// PostgreSQL, Kafka and Redis (the engines of deploy/engines, `bash deploy/engines/up.sh postgres redis
// kafka`). Side by side with the mock upstream alone: throughput at 32 connections and the overhead at
// 500 req/s; then the event lag from the gateway's answer to the audit ledger having appended the
// request's event, for every request of a paced run, read back from the ledger's table.
// A database and a topic prefix of its own keep it apart from tests using the same engines.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'services/flowloom/bin/flowloom.js');
const ADMIN_KEY = 'flk_bench-distributed-admin-0123456789abcdef';
const PG_URL =
  process.env.FLOWLOOM_BENCH_PG_URL ??
  process.env.FLOWLOOM_TEST_PG_URL ??
  'postgres://postgres@127.0.0.1:5432/flowloom_test';
const REDIS_URL =
  process.env.FLOWLOOM_BENCH_REDIS_URL ?? process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const KAFKA_BROKERS =
  process.env.FLOWLOOM_BENCH_KAFKA_BROKERS ?? process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092';
const DATABASE = 'flowloom_bench_distributed';
// Fixed rather than per run, so that runs do not pile up topics on the shared broker; the database is
// new each run and the consumer groups resume past what earlier runs consumed.
const TOPIC_PREFIX = 'flowloom-bench-distributed';
const REQUEST_COMPLETED = 'dev.flowloom.gateway.request.completed.v1';
const POLL_MS = 10;

const CHAT = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello in five words.' }],
});

const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const wallClock = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Drops the bench's own database on the engines' PostgreSQL, and creates it anew unless `dropOnly`. */
async function resetDatabase(dropOnly = false): Promise<string> {
  const admin = await openPostgres(PG_URL, { max: 1, connectionTimeoutMillis: 3_000 }).catch(
    (error: Error) => {
      throw new Error(
        `PostgreSQL not reachable at ${PG_URL}: run bash deploy/engines/up.sh (${error.message})`,
      );
    },
  );
  try {
    await admin.exec(`drop database if exists ${DATABASE} with (force)`);
    if (!dropOnly) await admin.exec(`create database ${DATABASE}`);
  } finally {
    await admin.close();
  }
  const url = new URL(PG_URL);
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

interface Appended {
  /** When this poller first saw the entry committed (wall clock, ms). */
  seenAt: number;
  /** The entry's appended_at: when its append transaction began. */
  appendedAt: number;
  /** The event's own `time` attribute, set by the gateway. */
  eventTime: number;
}

/**
 * Polls the ledger table every POLL_MS for entries after `afterIdx`, and notes when each request
 * event was first visible. Reading the table rather than the audit API keeps the poll cheap and
 * exact; entries are committed when a reader sees them.
 */
class LedgerWatch {
  readonly appended = new Map<string, Appended>();
  private last: number;
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly db: Db,
    afterIdx: number,
  ) {
    this.last = afterIdx;
    this.loop = this.run();
  }

  static async start(db: Db): Promise<LedgerWatch> {
    const { rows } = await db.query<{ last: string }>(
      'select coalesce(max(idx), -1)::text as last from audit_entries',
    );
    return new LedgerWatch(db, Number(rows[0]?.last ?? -1));
  }

  private async run(): Promise<void> {
    while (this.running) {
      const { rows } = await this.db.query<{
        idx: string;
        entry: string | null;
        appended_ms: number;
        event_ms: number;
      }>(
        `select idx::text, case when event_type = $2 then entry end as entry,
                extract(epoch from appended_at)::float8 * 1000 as appended_ms,
                extract(epoch from event_time)::float8 * 1000 as event_ms
           from audit_entries where idx > $1 order by idx limit 5000`,
        [this.last, REQUEST_COMPLETED],
      );
      const seenAt = wallClock();
      for (const row of rows) {
        this.last = Number(row.idx);
        if (!row.entry) continue;
        const requestId = (JSON.parse(row.entry) as { data?: { requestId?: string } }).data?.requestId;
        if (requestId)
          this.appended.set(requestId, { seenAt, appendedAt: row.appended_ms, eventTime: row.event_ms });
      }
      if (rows.length < 5000) await sleep(POLL_MS);
    }
  }

  /** Waits until every id is in the ledger or `timeoutMs` passed; returns the ids still missing. */
  async waitFor(ids: Iterable<string>, timeoutMs: number): Promise<string[]> {
    const wanted = [...ids];
    const deadline = Date.now() + timeoutMs;
    let missing = wanted.filter((id) => !this.appended.has(id));
    while (missing.length > 0 && Date.now() < deadline) {
      await sleep(50);
      missing = missing.filter((id) => !this.appended.has(id));
    }
    return missing;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/**
 * Requests at a fixed rate through the gateway; each answered request's id and answer time are
 * then looked up in the ledger. Figures: answer → committed in the ledger (as a reader sees it,
 * within POLL_MS), and the event's own time → its append transaction.
 */
async function eventLag(
  db: Db,
  gateway: Target,
  rate: number,
  seconds: number,
  log: (line: string) => void,
): Promise<Figure[]> {
  log(`event lag: ${rate} req/s through the gateway for ${seconds} s, each request looked up in the ledger…`);
  const watch = await LedgerWatch.start(db);
  const answered = new Map<string, number>();
  try {
    const load = await fixedRate(gateway, rate, seconds, (headers, at) => {
      const id = headers['x-request-id'];
      if (typeof id === 'string') answered.set(id, at);
    });
    const missing = await watch.waitFor(answered.keys(), 60_000);
    const toLedger: number[] = [];
    const toAppend: number[] = [];
    for (const [id, at] of answered) {
      const entry = watch.appended.get(id);
      if (!entry) continue;
      toLedger.push(entry.seenAt - at);
      toAppend.push(entry.appendedAt - entry.eventTime);
    }
    toLedger.sort((a, b) => a - b);
    toAppend.sort((a, b) => a - b);
    const ms = (v: number) => Number(v.toFixed(1));
    const label = `event lag at ${rate} req/s`;
    const counts = `${toLedger.length} of ${answered.size} answered requests in the ledger (${missing.length} missing after 60 s), ${load.failed} failed`;
    return [
      {
        name: `${label}: answer → in the ledger, p50`,
        value: ms(percentile(toLedger, 50)),
        unit: 'ms',
        note: `${counts}; polled every ${POLL_MS} ms`,
      },
      {
        name: `${label}: answer → in the ledger, p99`,
        value: ms(percentile(toLedger, 99)),
        unit: 'ms',
        note: `max ${ms(toLedger[toLedger.length - 1] ?? Number.NaN)} ms`,
      },
      {
        name: `${label}: event time → append, p50 / p99`,
        value: ms(percentile(toAppend, 50)),
        unit: 'ms',
        note: `p99 ${ms(percentile(toAppend, 99))} ms (the event's time attribute → its append transaction)`,
      },
    ];
  } finally {
    await watch.stop();
  }
}

/** Events the gateway wrote to its outbox that the ledger does not hold yet. */
async function notInLedger(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `select count(*)::text as n from outbox o
      where not exists (select 1 from audit_entries a where a.event_id = o.id::text)`,
  );
  return Number(rows[0]?.n ?? 0);
}

/** Time until the ledger holds every event of the outbox (after a load run that outpaced it). */
async function catchUp(db: Db, timeoutMs: number): Promise<{ ms: number; behind: number; left: number }> {
  const start = Date.now();
  const behind = await notInLedger(db);
  let left = behind;
  while (left > 0 && Date.now() - start < timeoutMs) {
    await sleep(100);
    left = await notInLedger(db);
  }
  return { ms: Date.now() - start, behind, left };
}

/** Calls per command name in Redis's own statistics (the server's, every client of it included). */
async function redisCommandCalls(redis: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match && match[1] !== 'info') calls.set(match[1]!, Number(match[2]));
  }
  return calls;
}

/**
 * What each request of a fixed-rate run costs, counted over the run: the gateway's CPU time (all its
 * threads, and its main thread), Redis commands (scripts and the commands they run; every client of
 * that Redis counts, so a shared one adds its neighbours) and transactions in the bench's database
 * (the outbox's inserts, the relay's, the ledger's and the policy service's). Unlike latencies on a
 * busy shared machine, these stay put from run to run, and a round trip added to the request path
 * shows here first.
 */
function requestCosts(redisUrl: string, db: Db, gatewayPid: number | undefined, requests: number) {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const transactions = async () => {
    const { rows } = await db.query<{ n: string }>(
      'select xact_commit::text as n from pg_stat_database where datname = current_database()',
    );
    return Number(rows[0]?.n ?? 0);
  };
  let before: { cpu: ReturnType<typeof cpuMicros>; redis: Map<string, number>; xact: number } | undefined;
  return {
    async start(): Promise<void> {
      await redis.connect().catch(() => {});
      before = {
        cpu: gatewayPid ? cpuMicros(gatewayPid) : undefined,
        redis: await redisCommandCalls(redis),
        xact: await transactions(),
      };
    },
    async figures(label: string): Promise<Figure[]> {
      const cpu = gatewayPid ? cpuMicros(gatewayPid) : undefined;
      const commands = await redisCommandCalls(redis);
      // PostgreSQL publishes a backend's counts within a second of its transactions.
      await sleep(1_100);
      const xact = await transactions();
      redis.disconnect();
      if (!before) return [];
      const per = (n: number) => n / requests;
      const byCommand = [...commands]
        .map(([name, calls]) => [name, per(calls - (before?.redis.get(name) ?? 0))] as const)
        .filter(([, n]) => n >= 0.05)
        .sort((a, b) => b[1] - a[1]);
      const figures: Figure[] = [
        {
          name: `${label}: Redis commands per request`,
          value: Number(byCommand.reduce((sum, [, n]) => sum + n, 0).toFixed(2)),
          unit: 'count',
          note: `${byCommand.map(([name, n]) => `${name} ${n.toFixed(2)}`).join(', ')} (evalsha: one script, one round trip; the commands it runs are counted too)`,
        },
        {
          name: `${label}: PostgreSQL transactions per request`,
          value: Number(per(xact - before.xact).toFixed(2)),
          unit: 'count',
          note: 'the outbox inserts (group-committed), relay, ledger and policy service in the bench database',
        },
      ];
      if (cpu && before.cpu)
        figures.push({
          name: `${label}: gateway CPU per request`,
          value: Math.round(per(cpu.all - before.cpu.all)),
          unit: 'µs',
          note: `main thread ${Math.round(per(cpu.main - before.cpu.main))} µs; load average ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} cores`,
        });
      return figures;
    },
  };
}

/** Two observers of one load window, started and read together. */
function both(
  a: { start(): Promise<void>; figures(label: string): Promise<Figure[]> },
  b: { start(): Promise<void>; figures(label: string): Promise<Figure[]> },
) {
  return {
    start: async () => {
      await Promise.all([a.start(), b.start()]);
    },
    figures: async (label: string) => [...(await a.figures(label)), ...(await b.figures(label))],
  };
}

/** Runs the distributed benchmark; `seconds` per measured round. */
export async function runDistributedBench(log: (line: string) => void, seconds = 10): Promise<Figure[]> {
  const children: Child[] = [];
  const work = mkdtempSync(join(tmpdir(), 'flowloom-bench-distributed-'));
  let db: Db | undefined;
  try {
    const databaseUrl = await resetDatabase();
    const mock = await startMockUpstream(log);
    children.push(mock.child);
    // Budgets and rate limits on, so that every request reserves and settles in Redis.
    const configFile = join(work, 'flowloom.yaml');
    writeFileSync(configFile, BENCH_LIMITS_YAML);
    const common = {
      FLOWLOOM_DATABASE_URL: databaseUrl,
      FLOWLOOM_KAFKA_BROKERS: KAFKA_BROKERS,
      FLOWLOOM_KAFKA_TOPIC_PREFIX: TOPIC_PREFIX,
      FLOWLOOM_REDIS_URL: REDIS_URL,
      FLOWLOOM_CONFIG: configFile,
      FLOWLOOM_LOG_LEVEL: 'warn',
      FLOWLOOM_ADMIN_KEY: ADMIN_KEY,
      OPENAI_API_KEY: 'sk-bench',
      OPENAI_BASE_URL: mock.base,
    };
    log(`flowloom migrate on ${DATABASE}…`);
    await promisify(execFile)('node', [CLI, 'migrate'], { env: { ...process.env, ...common } });

    const serve = async (name: string, env: Record<string, string>): Promise<Child> => {
      log(`starting flowloom serve ${name}…`);
      const child = await startChild(
        'node',
        [CLI, 'serve', name],
        { ...common, FLOWLOOM_DATA_DIR: join(work, name), ...env },
        new RegExp(`FlowLoom ${name}:`),
        120_000,
      );
      children.push(child);
      return child;
    };
    const [auditHttp, auditGrpc, policyHttp, policyGrpc, gatewayHttp, gatewayGrpc] = await Promise.all(
      Array.from({ length: 6 }, () => freePort()),
    );
    await serve('audit', {
      FLOWLOOM_AUDIT_HTTP_PORT: String(auditHttp),
      FLOWLOOM_AUDIT_GRPC_PORT: String(auditGrpc),
    });
    await serve('policy', { FLOWLOOM_HTTP_PORT: String(policyHttp), FLOWLOOM_GRPC_PORT: String(policyGrpc) });
    const gatewayChild = await serve('gateway', {
      FLOWLOOM_HTTP_PORT: String(gatewayHttp),
      FLOWLOOM_GRPC_PORT: String(gatewayGrpc),
      FLOWLOOM_POLICY_SERVICE_URL: `127.0.0.1:${policyGrpc}`,
    });
    const gatewayBase = `http://127.0.0.1:${gatewayHttp}`;
    const { key } = await adminCall<{ key: string }>(gatewayBase, ADMIN_KEY, 'POST', '/api/v1/keys', {
      name: 'bench',
      project: 'bench',
    });

    const json = { 'content-type': 'application/json' };
    const upstream: Target = {
      name: 'upstream',
      url: `${mock.base}/chat/completions`,
      headers: { ...json, authorization: 'Bearer sk-bench' },
      body: CHAT,
    };
    const gateway: Target = {
      name: 'gateway (distributed)',
      url: `${gatewayBase}/v1/chat/completions`,
      headers: { ...json, authorization: `Bearer ${key}` },
      body: CHAT,
    };
    const check = await fetch(gateway.url, { method: 'POST', headers: gateway.headers, body: CHAT });
    if (check.status !== 200) throw new Error(`the gateway answered ${check.status}: ${await check.text()}`);
    // The audit service shares the key table: an admin key made on the gateway works there too.
    const audited = await adminCall<{ data: unknown[] }>(
      `http://127.0.0.1:${auditHttp}`,
      ADMIN_KEY,
      'GET',
      '/api/v1/audit/entries?limit=1',
    );
    if (!Array.isArray(audited.data)) throw new Error('the audit service did not answer its entries API');

    db = await openPostgres(databaseUrl, { max: 2 });
    const { figures, results } = await throughputFigures([upstream, gateway], seconds, log);
    figures.push({
      name: 'ratio: distributed gateway / bare upstream throughput',
      value: Number((results[gateway.name]!.rps / results.upstream!.rps).toFixed(3)),
      unit: '×',
      note: `load average ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} cores, engines and load generator included`,
    });
    log('waiting for the ledger to hold every event of that run…');
    const caught = await catchUp(db, 300_000);
    figures.push({
      name: 'ledger catch-up after the 32-connection run',
      value: Number((caught.ms / 1000).toFixed(1)),
      unit: 's',
      note: `${caught.behind} events were not yet appended when the load stopped; ${caught.left} left`,
    });

    const overhead = await overheadFigures(
      upstream,
      gateway,
      seconds,
      log,
      'the distributed gateway',
      both(
        mainThreadWindow(`${gatewayBase}/metrics`),
        requestCosts(REDIS_URL, db, gatewayChild.process.pid, 500 * seconds),
      ),
    );
    if (results[gateway.name]!.rps < 550) {
      // Below that rate the fixed load queues up: the figure then shows the backlog, not the overhead.
      for (const f of overhead.filter((f) => f.name.includes('overhead')))
        f.note = `${f.note}; NB the gateway did ${Math.round(results[gateway.name]!.rps)} req/s at most in this run, so requests queued`;
    }
    figures.push(...overhead);
    await catchUp(db, 120_000);
    figures.push(...(await eventLag(db, gateway, 20, Math.min(seconds, 5), log)));
    figures.push(...(await eventLag(db, gateway, 500, seconds, log)));
    figures.push({
      name: 'events of answered requests missing from the ledger',
      value: (await catchUp(db, 60_000)).left,
      unit: 'count',
      note: 'every event the gateway wrote to its outbox, checked at the end (target 0)',
    });
    return figures;
  } finally {
    await db?.close();
    for (const child of children.reverse()) await child.stop();
    rmSync(work, { recursive: true, force: true });
    await resetDatabase(true);
  }
}

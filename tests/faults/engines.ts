import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Db, openPostgres } from '@flowloom/store';
import { freePort } from '../bench/processes.js';

// Fault tests kill and restart engines. The shared engines on 5432/6379/9092 serve every other test
// file running in parallel, so each fault test runs disposable instances of its own (the
// FLOWLOOM_*_INSTANCE options of deploy/engines) on free ports, and purges them afterwards.

const ENGINES = fileURLToPath(new URL('../../deploy/engines/', import.meta.url));

function script(name: string, command: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [join(ENGINES, `${name}.sh`), command],
      { env: { ...process.env, ...env }, timeout: 180_000, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new Error(
              `deploy/engines/${name}.sh ${command} failed (${error.message.split('\n')[0]}); a fault test needs ${name} installed: run npm run engines:up first.\n${stderr.slice(-3000)}`,
            ),
          );
        else resolve(stdout);
      },
    );
  });
}

export interface OwnPostgres {
  /** A URL of one of its databases (`flowloom_test` by default). */
  url(database?: string): string;
  /** Stops the server (fast shutdown: sessions are cut off). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and deletes its data. */
  purge(): Promise<void>;
}

/** A PostgreSQL cluster of the test's own, on a free port. */
export async function startOwnPostgres(name: string): Promise<OwnPostgres> {
  const port = await freePort();
  const env = { FLOWLOOM_PG_INSTANCE: name, FLOWLOOM_PG_PORT: String(port) };
  await script('postgres', 'up', env);
  return {
    url: (database = 'flowloom_test') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    stop: async () => void (await script('postgres', 'down', env)),
    start: async () => void (await script('postgres', 'up', env)),
    purge: async () => void (await script('postgres', 'purge', env)),
  };
}

export interface OwnKafka {
  brokers: string;
  /** SIGKILL: no controlled shutdown, the broker recovers its log on the next start. */
  kill(): Promise<void>;
  start(): Promise<void>;
  purge(): Promise<void>;
}

/** A one-node Kafka (KRaft) of the test's own, on free ports, with a small heap. */
export async function startOwnKafka(name: string): Promise<OwnKafka> {
  const kafka = await ownKafka(name);
  await kafka.start();
  return kafka;
}

/**
 * A one-node Kafka of the test's own whose ports are chosen but that is not started yet: services
 * can be pointed at brokers that do not exist until `start()`.
 */
export async function ownKafka(name: string): Promise<OwnKafka> {
  const [port, controller] = [await freePort(), await freePort()];
  const env = {
    FLOWLOOM_KAFKA_INSTANCE: name,
    FLOWLOOM_KAFKA_PORT: String(port),
    FLOWLOOM_KAFKA_CONTROLLER_PORT: String(controller),
    FLOWLOOM_KAFKA_HEAP: '256m',
    // The client JIT only: the broker starts (and restarts) seconds sooner on two busy cores.
    FLOWLOOM_KAFKA_JAVA_OPTS: '-XX:TieredStopAtLevel=1',
  };
  const pidFile = join(enginesHome(), 'kafka/instances', name, 'kafka.pid');
  return {
    brokers: `127.0.0.1:${port}`,
    kill: () => killByPidFile(pidFile),
    start: async () => void (await script('kafka', 'up', env)),
    purge: async () => void (await script('kafka', 'purge', env)),
  };
}

/** A zombie counts as gone: whoever reaps orphans here (pid 1) may be slow to do it. */
function isAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface OwnRedis {
  url: string;
  /** SIGKILL: Redis keeps nothing here (no persistence), so it comes back empty. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and deletes its log. */
  stop(): Promise<void>;
}

/** A Redis of the test's own on a free port (redis.sh keeps one pidfile per port). */
export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const env = { FLOWLOOM_REDIS_PORT: String(port) };
  await script('redis', 'up', env);
  const pidFile = join(enginesHome(), 'redis', `redis-${port}.pid`);
  return {
    url: `redis://127.0.0.1:${port}`,
    kill: () => killByPidFile(pidFile),
    start: async () => void (await script('redis', 'up', env)),
    stop: async () => {
      await script('redis', 'down', env);
      // A port of its own each run: its log would only pile up in the cache.
      rmSync(join(enginesHome(), 'redis', `redis-${port}.log`), { force: true });
    },
  };
}

function enginesHome(): string {
  return process.env.FLOWLOOM_ENGINES_HOME ?? join(homedir(), '.cache/flowloom-engines');
}

async function killByPidFile(pidFile: string): Promise<void> {
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await new Promise((r) => setTimeout(r, 50));
}

const SHARED_PG_URL = process.env.FLOWLOOM_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/flowloom_test';

/** A new database of the test's own on the shared PostgreSQL (which fault tests never stop). */
export async function freshDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = async <T>(fn: (db: Db) => Promise<T>): Promise<T> => {
    const db = await openPostgres(SHARED_PG_URL, { max: 1, connectionTimeoutMillis: 3_000 }).catch(
      (error: Error) => {
        throw new Error(
          `PostgreSQL not reachable at ${SHARED_PG_URL}: run npm run engines:up (${error.message})`,
        );
      },
    );
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
  await admin((db) => db.exec(`create database ${name}`));
  const url = new URL(SHARED_PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin((db) => db.exec(`drop database if exists ${name} with (force)`)),
  };
}

/**
 * What every session of the PostgreSQL server at `url` is doing that is not idle (its wait and the
 * start of its statement): added to a set-up step's timeout error, it shows what the step waited on.
 */
export async function databaseActivity(url: string): Promise<string> {
  let db: Db | undefined;
  try {
    db = await openPostgres(url, { max: 1, connectionTimeoutMillis: 3_000 });
    const { rows } = await db.query<{ line: string }>(
      `select format('pid %s on %s: %s, waiting on %s/%s for %s s: %s', pid, datname, state,
                     coalesce(wait_event_type, '-'), coalesce(wait_event, '-'),
                     round(extract(epoch from now() - coalesce(query_start, backend_start))::numeric, 1),
                     left(regexp_replace(query, '\\s+', ' ', 'g'), 160)) as line
         from pg_stat_activity
        where state is distinct from 'idle' and pid <> pg_backend_pid() and backend_type = 'client backend'`,
    );
    return rows.length === 0 ? 'no active PostgreSQL sessions' : rows.map((r) => r.line).join('\n');
  } catch (error) {
    return `PostgreSQL activity unavailable: ${(error as Error).message}`;
  } finally {
    await db?.close().catch(() => {});
  }
}

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Db, QueryResult, Row, SqlParam } from './db.js';
import { classifyDbError } from './unavailable.js';

/**
 * An embedded database serves one process: small buffers keep the platform's idle memory near
 * 250 MB instead of ~380 MB with PostgreSQL's defaults (measured on the same data).
 */
const EMBEDDED_SETTINGS = [
  'shared_buffers=16MB',
  'work_mem=2MB',
  'maintenance_work_mem=16MB',
  'wal_buffers=1MB',
];

/**
 * The database thread's nice value, above the request-serving thread's (see pglite-worker.mjs). Five,
 * not more: under a sustained full load it still gets about a quarter of a contended core, so the
 * audit trail falls behind only briefly (flowloom_outbox_backlog_events shows it).
 */
const DATABASE_THREAD_NICE = 5;

async function initInChild(dataDir: string): Promise<void> {
  const script = fileURLToPath(new URL('./init-pglite.mjs', import.meta.url));
  try {
    await promisify(execFile)(process.execPath, [script, dataDir, JSON.stringify(EMBEDDED_SETTINGS)], {
      timeout: 300_000,
    });
  } catch (error) {
    throw new Error(`Could not create the embedded database in ${dataDir}: ${(error as Error).message}`);
  }
}

/** What pglite-worker.mjs accepts; `id` pairs each request with its reply. */
type Request =
  | { op: 'ready' }
  | { op: 'query'; sql: string; params: SqlParam[] | undefined; tx: number | undefined }
  | { op: 'exec'; sql: string }
  | { op: 'begin' }
  | { op: 'end'; tx: number; commit: boolean }
  | { op: 'memory' }
  | { op: 'close' };

type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { message: string } & Record<string, string> };

/** What the embedded database's thread holds in memory, in bytes (see pglite-worker.mjs). */
export interface EmbeddedDbMemory {
  /** The thread's own V8 heap: reserved, and used by live objects. */
  heapTotal: number;
  heapUsed: number;
  /** Memory its JavaScript objects hold outside that heap (buffers), array buffers included. */
  external: number;
  arrayBuffers: number;
  /** PostgreSQL's WASM memory: its size only grows, and what was touched once stays resident. */
  wasm: number;
}

const memoryOf = new WeakMap<Db, () => Promise<EmbeddedDbMemory>>();

/** The embedded database's memory, or undefined when `db` is not one (PostgreSQL runs elsewhere). */
export function embeddedDbMemory(db: Db): Promise<EmbeddedDbMemory> | undefined {
  return memoryOf.get(db)?.();
}

/** A PostgreSQL error from the embedded database, with its SQLSTATE `code` and detail fields. */
export class EmbeddedDbError extends Error {
  code?: string;
  detail?: string;
  constraint?: string;
}

/**
 * Who the embedded database works for. `platform` (the default): a process that answers requests,
 * so the database thread yields the CPU to them and keeps its idle memory small. `tool`: a command
 * that opens a stopped platform's data for one job (`flowloom audit verify --data-dir`, an export, a
 * report), where the database is the work: it gets a full share of the CPU and PostgreSQL's WASM is
 * optimized as it runs (verifying 1,000,000 entries: 7.2-8.0 s instead of 9.5-10.1 s, measured).
 */
export type EmbeddedDbPurpose = 'platform' | 'tool';

/**
 * Opens an embedded PGlite database in `dataDir` (created if missing), or in memory when omitted.
 * It runs on a worker thread (pglite-worker.mjs), so queries never block the thread serving requests.
 */
export async function openPglite(dataDir?: string, purpose: EmbeddedDbPurpose = 'platform'): Promise<Db> {
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await initInChild(dataDir);
  }
  // PostgreSQL's WASM holds thousands of functions that an embedded gateway never calls; compiling
  // each on its first call instead of all up front keeps ~20 MB of machine code out of idle RSS.
  setFlagsFromString('--wasm-lazy-compilation');
  const worker = new Worker(fileURLToPath(new URL('./pglite-worker.mjs', import.meta.url)), {
    workerData: {
      dataDir,
      settings: EMBEDDED_SETTINGS,
      nice: purpose === 'platform' ? DATABASE_THREAD_NICE : 0,
      baselineOnly: purpose === 'platform',
    },
    // The worker's JavaScript is thin glue around WASM; a small young generation saves ~20 MB RSS.
    resourceLimits: { maxYoungGenerationSizeMb: 4 },
  });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let failure: Error | undefined;
  // The worker keeps the process alive only while it owes an answer, like a socket with a query in flight.
  worker.unref();
  const settle = (id: number): void => {
    pending.delete(id);
    if (pending.size === 0) worker.unref();
  };
  worker.on('message', (reply: Reply) => {
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    settle(reply.id);
    if (reply.ok) waiter.resolve(reply.value);
    else
      waiter.reject(
        classifyDbError(Object.assign(new EmbeddedDbError(reply.error.message), reply.error)) as Error,
      );
  });
  const fail = (error: Error): void => {
    failure = new Error(`The embedded database stopped: ${error.message}`);
    for (const [id, waiter] of pending) {
      settle(id);
      waiter.reject(failure);
    }
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`its thread exited (code ${code})`)));

  const call = <T>(request: Request): Promise<T> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    if (pending.size === 0) worker.ref();
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ id, ...request });
    });
  };
  const queryIn =
    (tx: number | undefined) =>
    <R extends Row>(sql: string, params?: readonly SqlParam[]): Promise<QueryResult<R>> =>
      call<QueryResult<R>>({ op: 'query', sql, params: params ? [...params] : undefined, tx });

  try {
    await call({ op: 'ready' });
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  const db: Db = {
    kind: 'pglite',
    query: queryIn(undefined),
    async transaction(fn) {
      const tx = await call<number>({ op: 'begin' });
      let result: Awaited<ReturnType<typeof fn>>;
      try {
        result = await fn({ query: queryIn(tx) });
      } catch (error) {
        await call({ op: 'end', tx, commit: false });
        throw error;
      }
      await call({ op: 'end', tx, commit: true });
      return result;
    },
    async exec(sql) {
      await call({ op: 'exec', sql });
    },
    async close() {
      if (failure) return;
      await call({ op: 'close' });
      worker.removeAllListeners('exit');
      await worker.terminate();
      failure = new Error('The embedded database is closed');
    },
  };
  memoryOf.set(db, () => call<EmbeddedDbMemory>({ op: 'memory' }));
  return db;
}

// The embedded database on a thread of its own. PGlite is PostgreSQL compiled to WASM: every query
// runs synchronously on the thread that owns it, so on the main thread the ledger's and the
// decision store's inserts took the CPU that serves requests. Here they run beside it.
// Plain JavaScript, so the worker needs no TypeScript loader; the message shapes are the
// `Request` and `Reply` types of pglite.ts.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

if (!parentPort) throw new Error('pglite-worker.mjs runs as a worker thread (see pglite.ts)');
const port = parentPort;
const { dataDir, settings } = workerData;

// PGlite measures and copies each text parameter character by character in JavaScript before it
// binds it: for the ledger's and the decision store's batches (megabytes of JSON per statement) that
// took about a tenth of this thread. A long string is instead encoded to UTF-8 natively and bound in
// binary format, which for text, varchar and json is those same bytes (PostgreSQL's textrecv and
// json_recv), so the server gets exactly the text it got before. Short values keep the usual path.
const LONG_TEXT = 512;
const encoder = new TextEncoder();
// Not jsonb: its binary form starts with a version byte.
const TEXT_TYPES = [25 /* text */, 1043 /* varchar */, 114 /* json */];
const LONG_TEXT_AS_BYTES = {
  serializers: Object.fromEntries(
    TEXT_TYPES.map((oid) => [
      oid,
      (value) =>
        typeof value === 'string' && value.length >= LONG_TEXT
          ? encoder.encode(value)
          : pg.serializers[oid](value),
    ]),
  ),
};

/** Open transactions by id: each is a `tx` handle and the function that ends it. */
const transactions = new Map();
let nextTx = 1;

// This thread yields the CPU (its nice value is the process's plus workerData.nice) to the one answering requests: its big work (the audit trail's group
// commits and search index) is asynchronous, and on a small machine a burst of it (indexing
// thousands of entries) would otherwise compete with every answer waiting for a core. Linux applies
// a nice value to the one thread whose id is given; elsewhere this is skipped.
if (workerData.nice) {
  try {
    const thread = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(thread, Math.min(19, getPriority(thread) + workerData.nice));
  } catch {
    // No /proc/thread-self (not Linux) or not permitted: the thread keeps the process's priority.
  }
}

// On a platform (workerData.baselineOnly), PostgreSQL's WASM runs on V8's baseline compiler
// (Liftoff) only. By default V8 recompiles its hot functions with the optimizing compiler in the
// background; those compilations of a very large module left 65-110 MB more resident at idle
// (measured: 292 -> 227 MB for `flowloom up`), for a database whose work is already off the request
// path. The choice is made per module when it is compiled, so the flag is restored once the
// database is up: other WASM in the process (undici's HTTP parser) still gets optimized. A tool
// that opens the data for one big job (a verification) wants the optimized code's speed instead.
if (workerData.baselineOnly) setFlagsFromString('--liftoff-only');
const pg = new PGlite({ ...(dataDir ? { dataDir } : {}), postgresqlconf: settings });
const restoreOptimizer = () => setFlagsFromString('--no-liftoff-only');
pg.waitReady.then(restoreOptimizer, restoreOptimizer);

// Like pg's rowCount: the rows returned when there are any, else the rows a write touched.
const asResult = (result) => ({
  rows: result.rows,
  rowCount: result.fields.length > 0 ? result.rows.length : (result.affectedRows ?? 0),
});

// PostgreSQL's error fields survive the thread boundary, so callers see the same error as in-thread.
const FIELDS = ['code', 'detail', 'hint', 'constraint', 'table', 'column', 'schema', 'severity', 'where'];
function asError(error) {
  const out = { message: error instanceof Error ? error.message : String(error) };
  for (const field of FIELDS) if (typeof error?.[field] === 'string') out[field] = error[field];
  return out;
}

function begin() {
  const id = nextTx++;
  return new Promise((opened, failed) => {
    const open = {};
    // PGlite runs BEGIN, then this function, then COMMIT (or ROLLBACK when it rejects): the
    // function's promise stays pending until the caller's `end` settles it.
    open.done = pg
      .transaction(
        (tx) =>
          new Promise((finish, abort) => {
            Object.assign(open, { tx, finish, abort });
            transactions.set(id, open);
            opened(id);
          }),
      )
      .finally(() => transactions.delete(id));
    open.done.catch(failed);
  });
}

async function end(id, commit) {
  const open = transactions.get(id);
  if (!open) throw new Error(`transaction ${id} is not open`);
  if (commit) open.finish();
  else open.abort(new Error('rolled back'));
  await open.done.catch((error) => {
    if (commit) throw error;
  });
}

async function handle(request) {
  switch (request.op) {
    case 'ready':
      await pg.waitReady;
      return null;
    case 'query': {
      const target = request.tx === undefined ? pg : transactions.get(request.tx)?.tx;
      if (!target) throw new Error(`transaction ${request.tx} is not open`);
      return asResult(await target.query(request.sql, request.params, LONG_TEXT_AS_BYTES));
    }
    case 'exec':
      await pg.exec(request.sql);
      return null;
    case 'begin':
      return await begin();
    case 'end':
      await end(request.tx, request.commit);
      return null;
    case 'memory': {
      // This thread's V8 heap (each worker has its own) and PostgreSQL's WASM memory, which grows and
      // never shrinks: what the embedded database adds to the process's resident memory. `mod` is
      // PGlite's Emscripten module (not part of its typed API; 0 if a later version renames it).
      const { heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
      return {
        heapTotal,
        heapUsed,
        external,
        arrayBuffers,
        wasm: pg.mod?.wasmMemory?.buffer.byteLength ?? 0,
      };
    }
    case 'close':
      await pg.close();
      return null;
    default:
      throw new Error(`unknown request ${JSON.stringify(request.op)}`);
  }
}

port.on('message', (request) => {
  handle(request).then(
    (value) => port.postMessage({ id: request.id, ok: true, value }),
    (error) => port.postMessage({ id: request.id, ok: false, error: asError(error) }),
  );
});

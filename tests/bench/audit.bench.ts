import { execFile } from 'node:child_process';
import { randomBytes, randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { AuditLedger, FileSigningKeyStore, packTile, SqlLedgerStore } from '@flowloom/audit';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { canonicalize, Frontier, InMemoryNodeStore, MerkleLog, verifyInclusion } from '@flowloom/ledger';
import { type Db, openPglite, openPostgres } from '@flowloom/store';

// Audit service benchmarks (DESIGN.md Targets: ledger append, embedded ≥ 20,000 entries/s; verify
// 1,000,000 entries ≤ 10 s; inclusion proof at 10,000,000 ≤ 1 ms), through the real storage: PGlite
// on disk (the embedded install) and PostgreSQL. Figures with side-by-side baselines, never
// pass/fail. Sizes: AUDIT_BENCH_APPENDS (100,000), AUDIT_BENCH_VERIFY (1,000,000),
// AUDIT_BENCH_PROOF_SIZE (10,000,000).

export interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

const PG_URL =
  process.env.FLOWLOOM_BENCH_PG_URL ??
  process.env.FLOWLOOM_TEST_PG_URL ??
  'postgres://postgres@127.0.0.1:5432/flowloom_test';
const APPENDS = Number(process.env.AUDIT_BENCH_APPENDS ?? 100_000);
const VERIFY = Number(process.env.AUDIT_BENCH_VERIFY ?? 1_000_000);
const PROOF_SIZE = Number(process.env.AUDIT_BENCH_PROOF_SIZE ?? 10_000_000);
const BATCH = 1_000;
const ORIGIN = 'bench.flowloom/audit';

const log = (line: string): void => {
  process.stderr.write(`… audit: ${line}\n`);
};

function loadNote(note: string): string {
  return `${note}; load average ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} cores`;
}

/** A request event as the gateway emits it (~600 bytes canonical). */
function requestEvent(i: number): CloudEvent {
  return createEvent(
    'dev.flowloom.gateway.request.completed.v1',
    'flowloom/gateway',
    {
      requestId: `0190f5c2-7a1b-7c3d-8e4f-${i.toString(16).padStart(12, '0')}`,
      keyId: `01a2013f-2932-7000-a185-${(i % 97).toString(16).padStart(12, '0')}`,
      owner: `user-${i % 13}`,
      project: `project-${i % 5}`,
      api: 'openai',
      operation: 'chat',
      model: 'gpt-4o-mini',
      stream: i % 2 === 0,
      latencyMs: 100 + (i % 900),
      attempts: 1,
      provider: 'openai',
      deployment: 'openai/gpt-4o-mini',
      providerModel: 'gpt-4o-mini-2024-07-18',
      usage: { inputTokens: 100 + (i % 500), outputTokens: 50 + (i % 300), cachedInputTokens: 0 },
      costUsd: (i % 1000) / 1e5,
      finishReason: 'stop',
    },
    `key/${i % 97}`,
  );
}

interface Store {
  db: Db;
  close(): Promise<void>;
  describe: string;
  /** The embedded database's folder (PGlite on disk only). */
  dbDir?: string;
}

/** PGlite on disk, as the platform opens it. */
async function embeddedStore(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'flowloom-audit-bench-'));
  const db = await openPglite(join(dir, 'db'));
  return {
    db,
    describe: 'PGlite on disk',
    dbDir: join(dir, 'db'),
    async close() {
      // A second close returns at once: the verify run closes it before its child opens the folder.
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresStore(): Promise<Store> {
  const admin = await openPostgres(PG_URL, { max: 1, connectionTimeoutMillis: 3_000 });
  const schema = `audit_bench_${randomBytes(4).toString('hex')}`;
  await admin.exec(`create schema ${schema}`);
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-csearch_path=${schema}`);
  const db = await openPostgres(url.toString(), { max: 4 });
  return {
    db,
    describe: 'PostgreSQL',
    async close() {
      await db.close();
      await admin.exec(`drop schema if exists ${schema} cascade`);
      await admin.close();
    },
  };
}

async function openLedger(db: Db, keyDir: string, autoIndex = false): Promise<AuditLedger> {
  return AuditLedger.open({
    store: await SqlLedgerStore.open(db),
    signingKeys: new FileSigningKeyStore(join(keyDir, 'signing-key')),
    origin: ORIGIN,
    maxBatch: 5_000,
    autoIndex,
  });
}

interface AppendFigures {
  perSecond: number;
  cpuMicros: number;
  /** CPU of the main thread alone, the one that serves requests in `flowloom up`. */
  mainThreadMicros: number | undefined;
  indexPerSecond: number;
  /** CPU of this process per indexed entry (on PGlite, the database's thread included). */
  indexCpuMicros: number;
  /** The same for the entries' words, indexed after their attributes. */
  wordsPerSecond: number;
  wordsCpuMicros: number;
}

/**
 * CPU time of this process's main thread in µs, from /proc (Linux; undefined elsewhere): Node 20
 * reports CPU only for the whole process, which includes the embedded database's thread.
 */
function mainThreadCpuMicros(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // After "pid (comm) ", utime and stime are the 12th and 13th fields, in USER_HZ (100/s) ticks.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

/** Appends `count` events in deliveries of BATCH (as the bus hands them over), then indexes them. */
async function appendRun(store: Store, count: number, keyDir: string): Promise<AppendFigures> {
  const ledger = await openLedger(store.db, keyDir);
  const events = Array.from({ length: count }, (_, i) => requestEvent(i));
  await ledger.append(events.slice(0, BATCH)); // warm-up: JIT, statement caches
  const cpu = process.cpuUsage();
  const mainCpu = mainThreadCpuMicros();
  const start = performance.now();
  for (let at = BATCH; at < count; at += BATCH) await ledger.append(events.slice(at, at + BATCH));
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const mainUsed = mainCpu === undefined ? undefined : (mainThreadCpuMicros() ?? mainCpu) - mainCpu;
  const indexStart = performance.now();
  const indexCpu = process.cpuUsage();
  await ledger.catchUpIndex();
  const indexUsed = process.cpuUsage(indexCpu);
  const indexSeconds = (performance.now() - indexStart) / 1000;
  const wordsStart = performance.now();
  const wordsCpu = process.cpuUsage();
  await ledger.catchUpWords();
  const wordsUsed = process.cpuUsage(wordsCpu);
  const wordsSeconds = (performance.now() - wordsStart) / 1000;
  await ledger.close();
  return {
    perSecond: (count - BATCH) / seconds,
    cpuMicros: (used.user + used.system) / (count - BATCH),
    mainThreadMicros: mainUsed === undefined ? undefined : mainUsed / (count - BATCH),
    indexPerSecond: count / indexSeconds,
    indexCpuMicros: (indexUsed.user + indexUsed.system) / count,
    wordsPerSecond: count / wordsSeconds,
    wordsCpuMicros: (wordsUsed.user + wordsUsed.system) / count,
  };
}

/**
 * Appends `count` events in deliveries of BATCH as fast as they are taken, with the service's
 * background indexing on, until every one is also in the search index: the rate a sustained
 * stream is both durable and searchable at, measured rather than combined from the two rates.
 */
async function sustainedRun(
  store: Store,
  count: number,
  keyDir: string,
): Promise<{ filterable: number; searchable: number }> {
  const ledger = await openLedger(store.db, keyDir, true);
  const events = Array.from({ length: count }, (_, i) => requestEvent(i));
  await ledger.append(events.slice(0, BATCH));
  await ledger.catchUpIndex();
  await ledger.catchUpWords();
  const start = performance.now();
  for (let at = BATCH; at < count; at += BATCH) await ledger.append(events.slice(at, at + BATCH));
  const settled = async (backlog: () => number): Promise<number> => {
    while (backlog() > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    return (count - BATCH) / ((performance.now() - start) / 1000);
  };
  const filterable = await settled(() => ledger.indexBacklog);
  const searchable = await settled(() => ledger.wordsBacklog);
  await ledger.close();
  return { filterable, searchable };
}

/** The same events through the Merkle log alone (in memory, no storage), for the ratio. */
async function mathOnly(count: number): Promise<number> {
  const events = Array.from({ length: count }, (_, i) => requestEvent(i));
  const merkle = await MerkleLog.open(new InMemoryNodeStore());
  const start = performance.now();
  for (let at = 0; at < count; at += BATCH) {
    await merkle.appendEntries(events.slice(at, at + BATCH).map((e) => canonicalize(e)));
  }
  return count / ((performance.now() - start) / 1000);
}

/**
 * Fills a store with `count` entries as the platform writes them, closes it, then verifies it end to
 * end from storage in a process of its own that opens it as `flowloom audit verify --data-dir` does
 * (audit-verify.child.ts says why apart).
 */
async function verifyRun(
  store: Store,
  count: number,
  keyDir: string,
): Promise<{ seconds: number; fillSeconds: number; hashSeconds: number }> {
  const ledger = await openLedger(store.db, keyDir);
  const fillStart = performance.now();
  for (let at = 0; at < count; at += 5_000) {
    await ledger.append(Array.from({ length: Math.min(5_000, count - at) }, (_, i) => requestEvent(at + i)));
    if (at % 200_000 === 0) log(`filled ${at.toLocaleString('en-US')} / ${count.toLocaleString('en-US')}`);
    if ((at / 5_000) % 20 === 0) await ledger.checkpoint();
  }
  await ledger.checkpoint();
  const fillSeconds = (performance.now() - fillStart) / 1000;
  await ledger.close();
  await store.db.close();
  log('verifying in a process of its own, as flowloom audit verify --data-dir');
  const child = fileURLToPath(new URL('./audit-verify.child.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', child, store.dbDir ?? '', keyDir, ORIGIN],
    { maxBuffer: 1 << 20, timeout: 600_000 },
  );
  const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
    ok: boolean;
    entries: number;
    summary: string;
    seconds: number;
    hashSeconds: number;
  };
  if (!result.ok || result.entries !== count)
    throw new Error(`bench ledger failed to verify: ${result.summary}`);
  return { seconds: result.seconds, fillSeconds, hashSeconds: result.hashSeconds };
}

/**
 * Inclusion proofs served from storage at a large size. Proofs read only node tiles, so the tree
 * is stored as tiles of synthetic leaf hashes (entries themselves would only time the fill).
 */
async function proofRun(
  store: Store,
  size: number,
  keyDir: string,
): Promise<{ micros: number; verifyMicros: number; buildSeconds: number }> {
  const sql = await SqlLedgerStore.open(store.db);
  const tileLeaves = 1 << 14;
  const sampleEvery = Math.max(1, Math.floor(size / 500));
  const samples = new Map<number, Uint8Array>();
  const frontier = Frontier.empty();
  const random = Buffer.allocUnsafe(tileLeaves * 32);
  const buildStart = performance.now();
  for (let at = 0; at < size; at += tileLeaves) {
    const n = Math.min(tileLeaves, size - at);
    randomFillSync(random);
    const nodes: Array<{ level: number; index: number; hash: Uint8Array }> = [];
    for (let i = 0; i < n; i++) {
      const leaf = random.subarray(i * 32, (i + 1) * 32);
      if ((at + i) % sampleEvery === 0) samples.set(at + i, Uint8Array.from(leaf));
      frontier.push(leaf, (level, index, hash) =>
        nodes.push({ level, index, hash: level === 0 ? Uint8Array.from(hash) : hash }),
      );
    }
    await sql.append([], { startSize: at, endSize: at + n, hashes: packTile(at, at + n, nodes) });
    if ((at / tileLeaves) % 100 === 0)
      log(`proof tree ${at.toLocaleString('en-US')} / ${size.toLocaleString('en-US')}`);
  }
  const buildSeconds = (performance.now() - buildStart) / 1000;
  const root = frontier.root();
  const ledger = await openLedger(store.db, keyDir);
  const indexes = [...samples.keys()];
  let proofs: Uint8Array[][] = [];
  const start = performance.now();
  for (const index of indexes) proofs.push((await ledger.inclusionProofs([index], size))[0] ?? []);
  const micros = ((performance.now() - start) * 1000) / indexes.length;
  const verifyStart = performance.now();
  indexes.forEach((index, i) => {
    if (!verifyInclusion(index, size, samples.get(index) as Uint8Array, proofs[i] ?? [], root)) {
      throw new Error(`proof of ${index} does not verify`);
    }
  });
  const verifyMicros = ((performance.now() - verifyStart) * 1000) / indexes.length;
  proofs = [];
  await ledger.close();
  return { micros, verifyMicros, buildSeconds };
}

export async function runAuditBench(): Promise<BenchFigure[]> {
  const figures: BenchFigure[] = [];
  const keyDir = mkdtempSync(join(tmpdir(), 'flowloom-audit-bench-keys-'));
  try {
    log(`math-only baseline, ${APPENDS.toLocaleString('en-US')} events`);
    const math = await mathOnly(APPENDS);

    log(`append ${APPENDS.toLocaleString('en-US')} events, embedded`);
    const embedded = await embeddedStore();
    try {
      const run = await appendRun(embedded, APPENDS, keyDir);
      figures.push({
        name: `audit append, embedded (PGlite on disk), deliveries of ${BATCH}`,
        value: Math.round(run.perSecond),
        unit: 'entries/s',
        note: loadNote(
          `target ≥ 20,000; ${run.cpuMicros.toFixed(0)} µs CPU per entry (scrub, canonicalise, hash, dedup, write entry + tile), ${run.mainThreadMicros?.toFixed(0) ?? 'n/a'} µs of it on the main thread; Merkle math alone ${Math.round(math).toLocaleString('en-US')}/s`,
        ),
      });
      figures.push({
        name: 'audit search index build, embedded (background, off the append path)',
        value: Math.round(run.indexPerSecond),
        unit: 'entries/s',
        note: loadNote(
          `attribute indexes per entry; ${run.indexCpuMicros.toFixed(0)} µs CPU per entry (both threads)`,
        ),
      });
      figures.push({
        name: 'audit search words build, embedded (background, after the attributes)',
        value: Math.round(run.wordsPerSecond),
        unit: 'entries/s',
        note: loadNote(
          `words split on the main thread, tsvector + GIN; ${run.wordsCpuMicros.toFixed(0)} µs CPU per entry (both threads)`,
        ),
      });
      // All run on the one database thread, so a sustained stream is filterable at the first rate
      // and searchable by words at the second; faster bursts are durable at the append rate and
      // indexed once the index catches up.
      figures.push({
        name: 'audit append + search index, embedded, sustained',
        value: Math.round(1 / (1 / run.perSecond + 1 / run.indexPerSecond)),
        unit: 'entries/s',
        note: 'the append and attribute index rates above combined (one database thread does both)',
      });
      figures.push({
        name: 'audit append + search index + words, embedded, sustained',
        value: Math.round(1 / (1 / run.perSecond + 1 / run.indexPerSecond + 1 / run.wordsPerSecond)),
        unit: 'entries/s',
        note: 'the append, attribute and words rates above combined',
      });
    } finally {
      await embedded.close();
    }
    log(`append ${APPENDS.toLocaleString('en-US')} events with background indexing, embedded`);
    const streamed = await embeddedStore();
    try {
      const run = await sustainedRun(streamed, APPENDS, keyDir);
      figures.push({
        name: 'audit append + search index, embedded, measured (background indexing on)',
        value: Math.round(run.filterable),
        unit: 'entries/s',
        note: loadNote(
          `deliveries appended back to back until every entry is also in the attribute index; with its words too: ${Math.round(run.searchable).toLocaleString('en-US')}/s`,
        ),
      });
    } finally {
      await streamed.close();
    }

    let postgres: Store | undefined;
    try {
      postgres = await postgresStore();
    } catch (error) {
      figures.push({
        name: 'audit append, PostgreSQL',
        value: 0,
        unit: 'entries/s',
        note: `not measured: PostgreSQL not reachable (${(error as Error).message}); bash deploy/engines/up.sh postgres`,
      });
    }
    if (postgres) {
      try {
        log(`append ${APPENDS.toLocaleString('en-US')} events, PostgreSQL`);
        const run = await appendRun(postgres, APPENDS, keyDir);
        figures.push({
          name: `audit append, PostgreSQL, deliveries of ${BATCH}`,
          value: Math.round(run.perSecond),
          unit: 'entries/s',
          note: loadNote(
            `${run.cpuMicros.toFixed(0)} µs CPU per entry in this process; the server is on the same machine`,
          ),
        });
        figures.push({
          name: 'audit search index build, PostgreSQL',
          value: Math.round(run.indexPerSecond),
          unit: 'entries/s',
          note: loadNote(
            `the server is on the same machine; ${run.indexCpuMicros.toFixed(0)} µs CPU per entry in this process`,
          ),
        });
        figures.push({
          name: 'audit search words build, PostgreSQL',
          value: Math.round(run.wordsPerSecond),
          unit: 'entries/s',
          note: loadNote(`${run.wordsCpuMicros.toFixed(0)} µs CPU per entry in this process`),
        });
        figures.push({
          name: 'audit append + search index, PostgreSQL, sustained',
          value: Math.round(1 / (1 / run.perSecond + 1 / run.indexPerSecond)),
          unit: 'entries/s',
          note: `the append and attribute index rates above combined; with the words too: ${Math.round(1 / (1 / run.perSecond + 1 / run.indexPerSecond + 1 / run.wordsPerSecond)).toLocaleString('en-US')}/s`,
        });
      } finally {
        await postgres.close();
      }
    }

    log(`verify ${VERIFY.toLocaleString('en-US')} entries from the embedded store`);
    const verifyStore = await embeddedStore();
    try {
      const run = await verifyRun(verifyStore, VERIFY, keyDir);
      figures.push({
        name: `audit verify ${VERIFY.toLocaleString('en-US')} entries from the store (PGlite)`,
        value: Number(run.seconds.toFixed(2)),
        unit: 's',
        note: loadNote(
          `target ≤ 10 s; signatures, every checkpoint's root, tree nodes, row order and leaf hashes; filled in ${run.fillSeconds.toFixed(0)} s`,
        ),
      });
      figures.push({
        name: 'audit verify time / reading and hashing every entry alone',
        value: Number((run.seconds / run.hashSeconds).toFixed(2)),
        unit: '×',
        note: `reading and hashing the same entries took ${run.hashSeconds.toFixed(2)} s in the same run`,
      });
    } finally {
      await verifyStore.close();
    }

    let proofStore: Store | undefined;
    try {
      proofStore = await postgresStore();
    } catch {
      proofStore = await embeddedStore();
    }
    try {
      log(`inclusion proofs at ${PROOF_SIZE.toLocaleString('en-US')} entries (${proofStore.describe})`);
      const run = await proofRun(proofStore, PROOF_SIZE, keyDir);
      figures.push({
        name: `audit inclusion proof from storage at ${PROOF_SIZE.toLocaleString('en-US')} entries (${proofStore.describe})`,
        value: Number(run.micros.toFixed(0)),
        unit: 'µs/proof',
        note: loadNote(
          `target ≤ 1000 µs; at most one query (planned once) for the ${Math.ceil(Math.log2(PROOF_SIZE))}-node path's lower nodes, the upper ones and the size's compact range from memory; verification ${run.verifyMicros.toFixed(1)} µs; tiles written in ${run.buildSeconds.toFixed(0)} s`,
        ),
      });
    } finally {
      await proofStore.close();
    }
  } finally {
    rmSync(keyDir, { recursive: true, force: true });
  }
  return figures;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const figure of await runAuditBench()) {
    console.log(`${figure.name}: ${figure.value} ${figure.unit}${figure.note ? `  (${figure.note})` : ''}`);
  }
}

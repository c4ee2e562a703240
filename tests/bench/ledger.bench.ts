import { randomFillSync } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import {
  canonicalize,
  Frontier,
  generateKey,
  InMemoryNodeStore,
  leafHash,
  MerkleLog,
  parseProofs,
  parseVerifierKey,
  serializeProofs,
  signCheckpoint,
  splitEntryLines,
  verifyBundle,
  verifyInclusion,
} from '@flowloom/ledger';

// Ledger benchmarks (DESIGN.md Targets: append ≥ 20,000 entries/s; verify 1,000,000 entries
// ≤ 10 s; inclusion proof at 10,000,000 ≤ 1 ms). Figures, not pass/fail: machines are shared.

export interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

const ORIGIN = 'bench.flowloom/audit';

/** A realistic audit event, canonicalised: the kind of entry the audit service appends. */
function eventEntry(i: number): string {
  return canonicalize({
    specversion: '1.0',
    id: `0190f5c2-7a1b-7c3d-8e4f-${i.toString(16).padStart(12, '0')}`,
    source: 'gateway',
    type: 'dev.flowloom.gateway.request.completed.v1',
    subject: `key_${i % 97}`,
    time: '2025-01-01T00:00:00.000Z',
    data: {
      model: 'flowloom-local',
      promptTokens: i % 500,
      completionTokens: i % 300,
      costUsd: (i % 1000) / 1e5,
      decision: 'allow',
    },
  });
}

async function appendRate(total: number, batch: number): Promise<number> {
  const entries = Array.from({ length: total }, (_, i) => eventEntry(i));
  const log = await MerkleLog.open(new InMemoryNodeStore());
  const start = performance.now();
  for (let at = 0; at < total; at += batch) await log.appendEntries(entries.slice(at, at + batch));
  return total / ((performance.now() - start) / 1000);
}

async function verifyMillion(
  count: number,
): Promise<{ seconds: number; baselineSeconds: number; lineBytes: number }> {
  const key = generateKey(ORIGIN);
  const lines: Buffer[] = [];
  const leafHashes = Buffer.allocUnsafe(count * 32);
  const frontier = Frontier.empty();
  for (let i = 0; i < count; i++) {
    const line = Buffer.from(eventEntry(i));
    const hash = leafHash(line);
    leafHashes.set(hash, i * 32);
    frontier.push(hash);
    lines.push(line, Buffer.from('\n'));
  }
  const file = Buffer.concat(lines);
  lines.length = 0;
  const checkpoint = signCheckpoint(
    { origin: ORIGIN, size: count, rootHash: frontier.root(), extensions: [] },
    [key.signer],
  );
  const proofsJson = serializeProofs({ treeSize: count, leafHashes, checkpoints: [], inclusion: [] });

  // Baseline measured side by side: hashing every line alone, the floor any verifier must pay.
  const baselineStart = performance.now();
  for (const line of splitEntryLines(file)) leafHash(line);
  const baselineSeconds = (performance.now() - baselineStart) / 1000;

  const start = performance.now();
  const report = verifyBundle({
    entries: splitEntryLines(file),
    checkpoint,
    keys: [parseVerifierKey(key.verifierKey)],
    proofs: parseProofs(proofsJson),
  });
  const seconds = (performance.now() - start) / 1000;
  if (!report.ok) throw new Error(`bench bundle failed to verify: ${report.summary}`);
  return { seconds, baselineSeconds, lineBytes: Math.round(file.length / count) };
}

async function inclusionAtScale(
  size: number,
  proofs: number,
): Promise<{ micros: number; buildSeconds: number; rssMb: number }> {
  const log = await MerkleLog.open(new InMemoryNodeStore());
  // Sampled leaves spread over the whole tree (Knuth multiplicative hash), kept while building.
  const indexes = Array.from({ length: proofs }, (_, i) =>
    Math.floor((((i * 2654435761) % 2 ** 32) / 2 ** 32) * size),
  );
  const wanted = new Map<number, Uint8Array | undefined>(indexes.map((i) => [i, undefined]));
  const chunk = 1 << 16;
  const random = Buffer.allocUnsafe(chunk * 32);
  const buildStart = performance.now();
  // Synthetic leaf hashes: the tree above them is real; hashing 10M entries would only time SHA-256.
  for (let at = 0; at < size; at += chunk) {
    const n = Math.min(chunk, size - at);
    randomFillSync(random);
    const hashes = Array.from({ length: n }, (_, i) => random.subarray(i * 32, (i + 1) * 32));
    for (let i = 0; i < n; i++)
      if (wanted.has(at + i)) wanted.set(at + i, Uint8Array.from(hashes[i] as Uint8Array));
    await log.appendLeafHashes(hashes);
  }
  const buildSeconds = (performance.now() - buildStart) / 1000;
  const root = log.rootHash();
  const start = performance.now();
  for (const index of indexes) {
    const proof = await log.inclusionProof(index);
    if (!verifyInclusion(index, size, wanted.get(index) as Uint8Array, proof, root))
      throw new Error('proof failed');
  }
  const micros = ((performance.now() - start) * 1000) / proofs;
  return { micros, buildSeconds, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) };
}

/** The 1-minute load average when a figure is taken: the machine is shared, figures are not absolute. */
function loadNote(note: string): string {
  return `${note}; load average ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} cores`;
}

export async function runLedgerBench(): Promise<BenchFigure[]> {
  const figures: BenchFigure[] = [];
  const batched = await appendRate(200_000, 256);
  figures.push({
    name: 'ledger append, in-memory, batches of 256',
    value: Math.round(batched),
    unit: 'entries/s',
    note: loadNote('target ≥ 20,000; entries pre-canonicalised, timed: leaf + node hashing and store writes'),
  });
  const single = await appendRate(50_000, 1);
  figures.push({
    name: 'ledger append, in-memory, one entry per call',
    value: Math.round(single),
    unit: 'entries/s',
    note: loadNote('one awaited append per entry'),
  });
  const verify = await verifyMillion(1_000_000);
  figures.push({
    name: 'bundle verification, 1,000,000 entries',
    value: Number(verify.seconds.toFixed(2)),
    unit: 's',
    note: loadNote(
      `target ≤ 10 s; ~${verify.lineBytes} B per entry line; signature, tree and leafHashes checked`,
    ),
  });
  figures.push({
    name: 'bundle verification time / bare leaf hashing of the same lines',
    value: Number((verify.seconds / verify.baselineSeconds).toFixed(2)),
    unit: '×',
    note: `bare leaf hashing took ${verify.baselineSeconds.toFixed(2)} s in the same run`,
  });
  const inclusion = await inclusionAtScale(10_000_000, 2000);
  figures.push({
    name: 'inclusion proof generate + verify at 10,000,000 entries',
    value: Number(inclusion.micros.toFixed(1)),
    unit: 'µs/proof',
    note: loadNote(
      `target ≤ 1000 µs; tree built in ${inclusion.buildSeconds.toFixed(1)} s from synthetic leaf hashes; RSS ${inclusion.rssMb} MB`,
    ),
  });
  return figures;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const figure of await runLedgerBench()) {
    console.log(`${figure.name}: ${figure.value} ${figure.unit}${figure.note ? `  (${figure.note})` : ''}`);
  }
}

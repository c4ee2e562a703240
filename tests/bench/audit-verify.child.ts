import { join } from 'node:path';
import {
  AuditLedger,
  createVerifyWorker,
  FileSigningKeyStore,
  LocalAuditSource,
  SqlLedgerStore,
  verifyLog,
} from '@flowloom/audit';
import { leafHash, prunedLeafHash } from '@flowloom/ledger';
import { openPglite } from '@flowloom/store';

// The verification half of the audit bench, in a process of its own as `flowloom audit verify
// --data-dir` runs: one embedded database, opened as a tool, in a process that opened no other (V8
// shares compiled WASM between a process's threads, so a platform's database opened before would
// lend the tool its baseline-only code). Prints the figures as one JSON line.
// Usage: audit-verify.child.ts DB_DIR KEY_DIR ORIGIN

const [dbDir = '', keyDir = '', origin = ''] = process.argv.slice(2);
const db = await openPglite(dbDir, 'tool');
const ledger = await AuditLedger.open({
  store: await SqlLedgerStore.open(db),
  signingKeys: new FileSigningKeyStore(join(keyDir, 'signing-key')),
  origin,
  autoIndex: false,
});
const source = new LocalAuditSource(ledger, 'PGlite on disk');
const count = await ledger.ledgerStore.treeSize();

// Baseline in the same process: reading every page and hashing each line, nothing else.
const hashStart = performance.now();
for (let at = 0; at < count; at += 10_000) {
  const page = await source.bundlePage(at, Math.min(count, at + 10_000));
  for (const line of page.lines) {
    const bytes = Buffer.from(line);
    if (!prunedLeafHash(bytes)) leafHash(bytes);
  }
}
const hashSeconds = (performance.now() - hashStart) / 1000;

const worker = createVerifyWorker();
const start = performance.now();
const report = await verifyLog(source, {
  hashLines: (lines) => worker.hashLines(lines),
  treeChecker: worker.treeChecker,
});
const seconds = (performance.now() - start) / 1000;
await worker.close();
await ledger.close();
await db.close();
process.stdout.write(
  `${JSON.stringify({ ok: report.ok, entries: report.entryCount, summary: report.summary, seconds, hashSeconds })}\n`,
);

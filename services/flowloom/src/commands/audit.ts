import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type AuditService,
  type AuditSource,
  createVerifyWorker,
  DirectoryBundleWriter,
  type EntryFilter,
  type EvidenceReport,
  exportBundle,
  filterParams,
  HttpAuditSource,
  type LogReport,
  openAuditDirect,
  readBundleDir,
  type VerifyProgress,
  verifyEvidenceBundle,
  verifyLog,
} from '@flowloom/audit';
import { loadConfig } from '@flowloom/config';
import { openCheckpoint, parseVerifierKey, verifyInclusion } from '@flowloom/ledger';
import { callApi } from '../api-client.js';
import { type Command, type Io, UsageError } from '../command.js';
import { KEYGEN_HELP, keygenCommand } from './audit-keygen.js';

const HELP = `Usage: flowloom audit <command> [options]

The tamper-evident audit trail: an RFC 9162 Merkle log of every event, with Ed25519-signed checkpoints.

  flowloom audit verify [--key FILE] [--checkpoints DIR] [--json]
      Verify the live log end to end: recompute the tree from every entry, check every checkpoint's
      signature and that each one is reproduced by the entries (so they are all consistent), and check
      the stored tree nodes. Shows progress on stderr. Exits 1 naming the first bad entry.
  flowloom audit verify DIR [--key FILE] [--json]
      Verify an evidence bundle offline (no server, no database).
  flowloom audit export --out DIR [--from T] [--to T] [--project P] [--type T] [--actor A] [--key-id K]
                        [--job J] [--outcome O] [--text WORDS]
      Write an evidence bundle (entries.jsonl, checkpoint, proofs.json, public-key, manifest.json) at a
      fresh signed checkpoint, then verify it. With filters, entries that do not match are withheld:
      their line becomes {"$pruned":"<leaf hash>"}, so the bundle still verifies in full.
  flowloom audit query [--from T] [--to T] [--type T] [--actor A] [--key-id K] [--project P] [--job J]
                       [--outcome O] [--text WORDS] [--limit N] [--cursor C] [--json]
      the next page: --cursor with the value the previous page printed ("More: --cursor C")
  flowloom audit proof (--event ID | --index N) [--key FILE]      inclusion proof, checked locally
  flowloom audit checkpoint                                        sign a checkpoint now
  flowloom audit rotate-key                                        rotate the checkpoint signing key
                                          (refused when the key is provided from outside: replace it)
${KEYGEN_HELP}
  flowloom audit retention                                         apply retention now

Where the log is read from (verify, export):
  default               a running platform: FLOWLOOM_URL and FLOWLOOM_API_KEY (an admin key)
  --data-dir DIR        the embedded database of a stopped platform (FLOWLOOM_DATA_DIR layout)
  --database-url URL    PostgreSQL directly, e.g. as a read-only auditor role

Options:
  --key FILE            verifier keys you trust (a public-key file obtained independently); without it
                        the log's own published keys are used, which proves integrity, not origin
  --checkpoints DIR     checkpoints copied outside the database (audit.checkpointDir), also checked
  --json                print the full report as JSON on stdout

Times (T) are ISO 8601: 2025-01-31 or 2025-01-31T12:00:00Z. Verifications and exports are recorded in
the trail itself, attributed to the admin key used.`;

const sourceOptions = {
  'data-dir': { type: 'string' },
  'database-url': { type: 'string' },
} as const;

const filterOptions = {
  from: { type: 'string' },
  to: { type: 'string' },
  project: { type: 'string' },
  type: { type: 'string' },
  actor: { type: 'string' },
  'key-id': { type: 'string' },
  job: { type: 'string' },
  outcome: { type: 'string' },
  text: { type: 'string' },
} as const;

type Values = Record<string, string | boolean | undefined>;

function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function time(values: Values, name: string): Date | undefined {
  const value = str(values, name);
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageError(`--${name} "${value}" is not a date or time (ISO 8601)`);
  return new Date(ms);
}

export function filterOf(values: Values): EntryFilter {
  const type = str(values, 'type');
  if (type !== undefined && !/^[a-z0-9_.-]+\*?$/.test(type)) {
    throw new UsageError('--type must be an event type, or a prefix ending in *');
  }
  const from = time(values, 'from');
  const to = time(values, 'to');
  if (from && to && from >= to) throw new UsageError('--from must be before --to');
  return {
    from,
    to,
    type,
    project: str(values, 'project'),
    actor: str(values, 'actor'),
    keyId: str(values, 'key-id'),
    job: str(values, 'job'),
    outcome: str(values, 'outcome'),
    text: str(values, 'text'),
  };
}

/** The ledger to read: a stopped platform's data folder, PostgreSQL directly, or the live API. */
export async function openSource(
  io: Io,
  values: Values,
): Promise<{ source: AuditSource; service?: AuditService; live?: HttpAuditSource; close(): Promise<void> }> {
  const dataDir = str(values, 'data-dir');
  const databaseUrl = str(values, 'database-url');
  if (dataDir && databaseUrl) throw new UsageError('give --data-dir or --database-url, not both');
  if (dataDir || databaseUrl) {
    const env: Record<string, string | undefined> = { ...io.env };
    if (dataDir) {
      env.FLOWLOOM_DATA_DIR = dataDir;
      delete env.FLOWLOOM_DATABASE_URL;
    }
    if (databaseUrl) env.FLOWLOOM_DATABASE_URL = databaseUrl;
    const service = await openAuditDirect(loadConfig({ env }));
    return { source: service.source, service, close: () => service.close() };
  }
  const key = io.env.FLOWLOOM_API_KEY;
  if (!key) {
    throw new Error(
      'FLOWLOOM_API_KEY is not set. Export an admin key to reach a running platform, or read a stopped one with --data-dir.',
    );
  }
  const live = new HttpAuditSource(io.env.FLOWLOOM_URL ?? 'http://127.0.0.1:8080', key);
  return { source: live, live, close: async () => {} };
}

function readKeyFile(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--key ${path}: ${(error as Error).message}`);
  }
}

function keyLines(text: string | undefined): string[] | undefined {
  return text
    ?.split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

function readExternalCheckpoints(dir: string | undefined): Array<{ name: string; note: string }> | undefined {
  if (dir === undefined) return undefined;
  try {
    return readdirSync(dir)
      .filter((name) => name.endsWith('.checkpoint'))
      .sort()
      .map((name) => ({ name, note: readFileSync(join(dir, name), 'utf8') }));
  } catch (error) {
    throw new UsageError(`--checkpoints ${dir}: ${(error as Error).message}`);
  }
}

/** Progress on stderr: a rewritten line on a terminal, a line per tenth otherwise. */
function progressPrinter(io: Io, tty: boolean): (p: VerifyProgress) => void {
  const labels = { checkpoints: 'checkpoints', tree: 'tree nodes', entries: 'entries' } as const;
  let lastPhase = '';
  let lastTenth = -1;
  let lastAt = 0;
  return (p) => {
    const tenth = p.total === 0 ? 10 : Math.floor((p.done / p.total) * 10);
    const now = Date.now();
    if (p.phase === lastPhase && tenth === lastTenth && (tty ? now - lastAt < 200 : true)) return;
    lastPhase = p.phase;
    lastTenth = tenth;
    lastAt = now;
    const pct = p.total === 0 ? 100 : Math.floor((p.done / p.total) * 100);
    const line = `  ${labels[p.phase]}: ${p.done.toLocaleString('en-US')}${p.phase === 'checkpoints' ? '' : ` / ${p.total.toLocaleString('en-US')} (${pct}%)`}`;
    io.err(line);
  };
}

function printLogReport(io: Io, report: LogReport): void {
  io.out(report.summary);
  if (report.firstBad) {
    io.out(
      `First bad entry: ${report.firstBad.index}${report.firstBad.exact ? ` (${report.firstBad.kind})` : ` (somewhere before ${report.firstBad.before ?? '?'})`}`,
    );
  }
  for (const problem of report.problems.slice(1, 10)) io.out(`  also: ${problem.message}`);
}

function printBundleReport(io: Io, report: EvidenceReport): void {
  io.out(report.summary);
  if (report.firstBad) io.out(`First bad entry: ${report.firstBad.index} (${report.firstBad.kind})`);
  for (const problem of report.problems.slice(1, 10)) io.out(`  also: ${problem.message}`);
  if (report.ok && report.keys === 'bundle') {
    io.err(
      "Note: checked with the bundle's own public-key (integrity). Pass --key with a key you obtained independently to prove its origin.",
    );
  }
}

async function verifyCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      ...sourceOptions,
      key: { type: 'string' },
      checkpoints: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 1) throw new UsageError('flowloom audit verify takes at most one folder');
  const trusted = readKeyFile(str(values, 'key'));
  const dir = positionals[0];
  if (dir !== undefined) {
    if (values['data-dir'] || values['database-url'] || values.checkpoints) {
      throw new UsageError(
        'a bundle is verified on its own: drop --data-dir, --database-url and --checkpoints',
      );
    }
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory())
      throw new UsageError(`${dir} is not a folder`);
    const report = verifyEvidenceBundle(await readBundleDir(dir), trusted);
    if (values.json) io.out(JSON.stringify(report, null, 2));
    else printBundleReport(io, report);
    return report.ok ? 0 : 1;
  }

  const opened = await openSource(io, values);
  try {
    io.err(`Verifying the audit ledger from ${opened.source.description}…`);
    // A running service signs what it has so far, so the whole log is covered by a signature.
    if (opened.live) await opened.live.issueCheckpoint();
    const worker = createVerifyWorker();
    const report = await verifyLog(opened.source, {
      trustedKeys: keyLines(trusted),
      externalCheckpoints: readExternalCheckpoints(str(values, 'checkpoints')),
      onProgress: progressPrinter(io, process.stderr.isTTY === true),
      hashLines: (lines) => worker.hashLines(lines),
      treeChecker: worker.treeChecker,
    }).finally(() => worker.close());
    if (values.json) io.out(JSON.stringify(report, null, 2));
    else printLogReport(io, report);
    await opened.source
      .record(
        {
          kind: 'verification',
          ok: report.ok,
          treeSize: report.treeSize,
          entries: report.entryCount,
          checkpoints: report.checkpointsVerified,
          summary: report.summary.slice(0, 2000),
          ...(report.firstBad ? { firstBadIndex: report.firstBad.index } : {}),
        },
        `cli ${io.env.USER ?? 'user'} (direct)`,
      )
      .catch((error: Error) =>
        io.err(`Warning: the verification could not be recorded in the ledger: ${error.message}`),
      );
    return report.ok ? 0 : 1;
  } finally {
    await opened.close();
  }
}

async function exportCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { ...sourceOptions, ...filterOptions, out: { type: 'string' }, json: { type: 'boolean' } },
  });
  const out = str(values, 'out');
  if (!out) throw new UsageError('flowloom audit export needs --out DIR');
  const filter = filterOf(values);
  const opened = await openSource(io, values);
  try {
    const writer = await DirectoryBundleWriter.create(resolve(out));
    io.err(`Exporting the audit ledger from ${opened.source.description} to ${out}…`);
    let lastTenth = -1;
    const result = await exportBundle(opened.source, writer, {
      filter,
      onProgress: (done, total) => {
        const tenth = total === 0 ? 10 : Math.floor((done / total) * 10);
        if (tenth !== lastTenth)
          io.err(`  entries: ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}`);
        lastTenth = tenth;
      },
    });
    const check = verifyEvidenceBundle(await readBundleDir(resolve(out)));
    await opened.source
      .record(
        {
          kind: 'export',
          treeSize: result.treeSize,
          filter: result.filter,
          exported: result.exported,
          withheld: result.withheld,
          pruned: result.pruned,
          destination: resolve(out).slice(0, 1000),
        },
        `cli ${io.env.USER ?? 'user'} (direct)`,
      )
      .catch((error: Error) =>
        io.err(`Warning: the export could not be recorded in the ledger: ${error.message}`),
      );
    if (values.json)
      io.out(JSON.stringify({ ...result, checkpoint: result.checkpoint.note, verified: check.ok }, null, 2));
    else {
      io.out(
        `Exported ${result.treeSize.toLocaleString('en-US')} entries to ${out}: ${result.exported.toLocaleString('en-US')} in full, ${result.withheld.toLocaleString('en-US')} withheld by the filter, ${result.pruned.toLocaleString('en-US')} pruned by retention; signed checkpoint at size ${result.treeSize} (key ${result.checkpoint.keyId}).`,
      );
      io.out(check.ok ? `Checked: ${check.summary}` : `The written bundle does NOT verify: ${check.summary}`);
    }
    return check.ok ? 0 : 1;
  } finally {
    await opened.close();
  }
}

interface EntryJson {
  index: number;
  time: string;
  type: string;
  actor: string | null;
  project: string | null;
  outcome: string | null;
  pruned: boolean;
  eventId: string;
}

async function queryCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      ...filterOptions,
      limit: { type: 'string' },
      cursor: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const filter = filterOf(values);
  const params = new URLSearchParams();
  filterParams(filter, params);
  const set = (name: string, value: string | undefined): void => {
    if (value !== undefined) params.set(name, value);
  };
  set('limit', str(values, 'limit'));
  set('cursor', str(values, 'cursor'));
  const page = (await callApi(io, 'GET', `/api/v1/audit/entries?${params}`)) as {
    data: EntryJson[];
    nextCursor: string | null;
    notSearched?: number;
  };
  if (values.json) {
    io.out(JSON.stringify(page, null, 2));
    return 0;
  }
  if (page.data.length === 0) io.out('No entries.');
  for (const e of page.data) {
    io.out(
      `${String(e.index).padStart(8)}  ${e.time}  ${e.type}  actor=${e.actor ?? '-'}  project=${e.project ?? '-'}  outcome=${e.outcome ?? '-'}${e.pruned ? '  (pruned)' : ''}`,
    );
  }
  if (page.nextCursor) io.out(`More: --cursor ${page.nextCursor}`);
  if (page.notSearched)
    io.err(
      `Not searched yet: the newest ${page.notSearched} entries (their search words are still being indexed after a burst); run the query again to cover them.`,
    );
  return 0;
}

async function proofCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      event: { type: 'string' },
      index: { type: 'string' },
      key: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const event = str(values, 'event');
  const index = str(values, 'index');
  if ((event === undefined) === (index === undefined)) throw new UsageError('give --event ID or --index N');
  if (index !== undefined && !/^\d+$/.test(index)) throw new UsageError('--index must be a whole number');
  const query = event !== undefined ? `eventId=${encodeURIComponent(event)}` : `index=${index}`;
  const proof = (await callApi(io, 'GET', `/api/v1/audit/proofs/inclusion?${query}`)) as {
    index: number;
    treeSize: number;
    leafHash: string;
    rootHash: string;
    proof: string[];
    checkpoint: string | null;
  };
  const keysText =
    readKeyFile(str(values, 'key')) ??
    ((await fetch(
      `${(io.env.FLOWLOOM_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '')}/api/v1/audit/public-key`,
    ).then((r) => r.text())) as string);
  const keys = (keyLines(keysText) ?? []).map((k) => parseVerifierKey(k));
  const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
  let ok = false;
  let message: string;
  try {
    if (!proof.checkpoint) throw new Error('no signed checkpoint came with the proof');
    const { checkpoint } = openCheckpoint(proof.checkpoint, keys);
    ok =
      checkpoint.size === proof.treeSize &&
      verifyInclusion(
        proof.index,
        proof.treeSize,
        bytes(proof.leafHash),
        proof.proof.map(bytes),
        checkpoint.rootHash,
      );
    message = ok
      ? `OK: entry ${proof.index} is in the signed tree of ${proof.treeSize} entries (${proof.proof.length} hashes)`
      : `FAILED: the proof does not lead to the signed root`;
  } catch (error) {
    message = `FAILED: ${(error as Error).message}`;
  }
  if (values.json) io.out(JSON.stringify({ ...proof, verified: ok }, null, 2));
  else io.out(message);
  return ok ? 0 : 1;
}

export const auditCommand: Command = {
  name: 'audit',
  summary: 'Verify, export and query the tamper-evident audit trail',
  help: HELP,
  async run(args, io) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'verify':
        return verifyCommand(rest, io);
      case 'export':
        return exportCommand(rest, io);
      case 'query':
        return queryCommand(rest, io);
      case 'proof':
        return proofCommand(rest, io);
      case 'checkpoint': {
        parseArgs({ args: rest, strict: true, options: {} });
        const cp = (await callApi(io, 'POST', '/api/v1/audit/checkpoints', {})) as { checkpoint: string };
        io.out(cp.checkpoint.trimEnd());
        return 0;
      }
      case 'keygen':
        return keygenCommand(rest, io);
      case 'rotate-key': {
        parseArgs({ args: rest, strict: true, options: {} });
        const r = (await callApi(io, 'POST', '/api/v1/audit/keys/rotate', {})) as {
          previousKeyId: string;
          keyId: string;
          verifierKey: string;
        };
        io.out(
          `Rotated the signing key ${r.previousKeyId} → ${r.keyId}. Publish the new verifier key:\n  ${r.verifierKey}`,
        );
        return 0;
      }
      case 'retention': {
        parseArgs({ args: rest, strict: true, options: {} });
        const r = (await callApi(io, 'POST', '/api/v1/audit/retention/run', {})) as {
          pruned: Array<{ type: string; pruned: number; cutoff: string }>;
        };
        if (r.pruned.length === 0) io.out('Nothing to prune.');
        for (const p of r.pruned)
          io.out(`${p.type}: ${p.pruned} entries older than ${p.cutoff} pruned (hashes kept)`);
        return 0;
      }
      default:
        throw new UsageError(sub ? `unknown audit command "${sub}"` : 'flowloom audit needs a subcommand');
    }
  },
};

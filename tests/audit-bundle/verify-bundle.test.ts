import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  openTestLedger,
  openTestPostgres,
  requestEvent,
  type TestLedger,
  tempDir,
} from '@flowloom/audit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, cleanEnv, ROOT, runCli, runProcess } from '../e2e/cli-support.js';

// An auditor's own tool: tests/audit-bundle/verify_bundle.py, written from BUNDLE-FORMAT.md alone
// in Python's standard library (Ed25519 included, from RFC 8032), must accept the bundles
// `flowloom audit export` writes and the document's worked example, and reject tampered copies,
// naming the same first bad entry as the format prescribes. If it disagrees with FlowLoom, the
// document is not the whole contract it claims to be.

const VERIFIER = join(ROOT, 'tests/audit-bundle/verify_bundle.py');
const FORMAT_DOC = join(ROOT, 'libs/ledger/BUNDLE-FORMAT.md');
const OLD = new Date('2020-06-01T00:00:00Z');

function python(args: string[]): Promise<CliResult> {
  return runProcess('python3', [VERIFIER, ...args], {
    cwd: ROOT,
    env: cleanEnv({}),
    timeoutMs: 60_000,
    label: 'python3 verify_bundle.py (python3 missing? .ci/run installs it)',
  });
}

type Database = Awaited<ReturnType<typeof openTestPostgres>>;

describe('an independent Python verifier of evidence bundles', () => {
  let database: Database;
  let t: TestLedger;
  const dir = tempDir('flowloom-pybundle-');
  const full = join(dir.path, 'full');
  const filtered = join(dir.path, 'apollo');

  /** A copy of `bundle` with `change` applied to its files. */
  const tampered = (
    bundle: string,
    name: string,
    change: (files: { path: (f: string) => string }) => void,
  ) => {
    const copy = join(dir.path, name);
    cpSync(bundle, copy, { recursive: true });
    change({ path: (f) => join(copy, f) });
    return copy;
  };
  const editLines = (path: string, edit: (lines: string[]) => string[]): void => {
    const lines = readFileSync(path, 'utf8').replace(/\n$/, '').split('\n');
    writeFileSync(path, `${edit(lines).join('\n')}\n`);
  };

  beforeAll(async () => {
    // A log with what a bundle must carry: two keys (a rotation), earlier checkpoints from size 0 on,
    // pruned entries.
    database = await openTestPostgres();
    t = await openTestLedger(database.db);
    // As the service does at first start: the empty log's checkpoint (a consistency proof from 0).
    await t.ledger.checkpoint();
    await t.ledger.append(
      Array.from({ length: 12 }, (_, i) => requestEvent(i, { at: OLD, failed: i % 3 === 0 })),
    );
    await t.ledger.checkpoint();
    await t.ledger.rotateKey('auditor-test');
    await t.ledger.append(
      Array.from({ length: 25 }, (_, i) =>
        requestEvent(100 + i, { project: i % 4 === 0 ? 'apollo' : 'zeus' }),
      ),
    );
    await t.ledger.checkpoint();
    await t.ledger.applyRetention([{ pattern: 'dev.flowloom.gateway.request.failed.v1', days: 365 }]);
    await t.ledger.checkpoint();
    await t.ledger.close();
    const env = cleanEnv({});
    const url = database.url ?? '';
    for (const [out, extra] of [
      [full, []],
      [filtered, ['--project', 'apollo']],
    ] as const) {
      const result = await runCli(
        ['audit', 'export', '--out', out, '--database-url', url, ...extra],
        env,
        90_000,
      );
      expect(result.code, result.stdout + result.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    t?.cleanup();
    await database?.drop();
    dir.remove();
  });

  it('when given the worked example of the format document, then it verifies it, and finds the tampering the document describes', async () => {
    const example = join(dir.path, 'example');
    mkdirSync(example);
    const doc = readFileSync(FORMAT_DOC, 'utf8');
    const files = [...doc.matchAll(/```(?:text|json) file=(\S+)\n([\s\S]*?)```/g)];
    expect(files.map((m) => m[1]).sort()).toEqual([
      'checkpoint',
      'entries.jsonl',
      'manifest.json',
      'proofs.json',
      'public-key',
    ]);
    for (const [, name, text] of files) writeFileSync(join(example, name ?? ''), text ?? '');
    const ok = await python([example, '--key', join(example, 'public-key')]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^OK: 4 entries \(1 markers\)/);
    const swapped = tampered(example, 'example-swapped', (f) =>
      editLines(f.path('entries.jsonl'), ([a, b, ...rest]) => [b ?? '', a ?? '', ...rest]),
    );
    expect((await python([swapped])).stdout).toContain('First bad entry: 0 (reordered)');
    const cut = tampered(example, 'example-cut', (f) =>
      editLines(f.path('entries.jsonl'), (l) => l.slice(0, 3)),
    );
    expect((await python([cut])).stdout).toContain('First bad entry: 3 (truncated)');
  });

  it('when given bundles exported by flowloom audit export, full and filtered, then it verifies them, signatures included', async () => {
    const size = t.ledger.size;
    for (const bundle of [full, filtered]) {
      const result = await python([bundle]);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      const markers = Number(/\((\d+) markers\)/.exec(result.stdout)?.[1]);
      // Every line counts; the filtered one withholds all but apollo's 7 entries.
      expect(result.stdout).toMatch(new RegExp(`^OK: ${size} entries`));
      expect(result.stdout).toMatch(/[1-9]\d* earlier checkpoints/);
      expect(markers).toBe(bundle === full ? 4 : size - 7);
    }
    // The earlier checkpoints start at the empty log's: the proof from size 0 is checked too.
    const proofs = JSON.parse(readFileSync(join(full, 'proofs.json'), 'utf8')) as {
      checkpoints: Array<{ checkpoint: string }>;
    };
    expect(proofs.checkpoints.map((c) => Number(c.checkpoint.split('\n')[1]))).toContain(0);
  });

  const cases: Array<{
    name: string;
    bundle: () => string;
    change: (path: (f: string) => string) => void;
    expected: RegExp;
  }> = [
    {
      name: 'an entry is changed',
      bundle: () => full,
      change: (p) =>
        editLines(p('entries.jsonl'), (l) => l.map((x, i) => (i === 20 ? x.replace('"req-', '"req-x') : x))),
      expected: /First bad entry: 20 \(changed\)/,
    },
    {
      name: 'an entry is deleted',
      bundle: () => full,
      change: (p) => editLines(p('entries.jsonl'), (l) => l.filter((_, i) => i !== 14)),
      expected: /First bad entry: 14 \(deleted\)/,
    },
    {
      name: 'a forged entry is inserted',
      bundle: () => full,
      change: (p) =>
        editLines(p('entries.jsonl'), (l) => [
          ...l.slice(0, 17),
          (l[16] ?? '').replace('req-', 'req-forged-'),
          ...l.slice(17),
        ]),
      expected: /First bad entry: 17 \(inserted\)/,
    },
    {
      name: 'two entries are reordered',
      bundle: () => full,
      change: (p) =>
        editLines(p('entries.jsonl'), (l) =>
          l.map((x, i) => (i === 22 ? (l[23] ?? '') : i === 23 ? (l[22] ?? '') : x)),
        ),
      expected: /First bad entry: 22 \(reordered\)/,
    },
    {
      name: 'the log is truncated',
      bundle: () => full,
      change: (p) => editLines(p('entries.jsonl'), (l) => l.slice(0, -2)),
      expected: /First bad entry: \d+ \(truncated\)/,
    },
    {
      name: 'a pruned marker is replaced by forged content',
      bundle: () => full,
      change: (p) => editLines(p('entries.jsonl'), (l) => l.map((x, i) => (i === 0 ? '{"forged":true}' : x))),
      expected: /First bad entry: 0 \(changed\)/,
    },
    {
      name: 'the checkpoint signature is altered',
      bundle: () => full,
      change: (p) => {
        // A character of the signature's S half (its key id and R stay valid).
        const note = readFileSync(p('checkpoint'), 'utf8');
        const at = note.lastIndexOf(' ') + 1 + 60;
        writeFileSync(
          p('checkpoint'),
          note.slice(0, at) + (note[at] === 'A' ? 'B' : 'A') + note.slice(at + 1),
        );
      },
      expected: /checkpoint: .*(does not verify|not canonical)/,
    },
    {
      name: 'the signed text of the checkpoint is altered',
      bundle: () => full,
      change: (p) =>
        writeFileSync(
          p('checkpoint'),
          readFileSync(p('checkpoint'), 'utf8').replace('test.flowloom/audit\n', 'test.flowloom/audlt\n'),
        ),
      expected: /checkpoint: the signature of key test\.flowloom\/audit\+[0-9a-f]{8} does not verify/,
    },
    {
      name: 'the checkpoint is re-signed with a key the auditor does not trust',
      bundle: () => full,
      change: (p) =>
        writeFileSync(
          p('public-key'),
          readFileSync(join(filtered, 'public-key'), 'utf8').split('\n').slice(1).join('\n'),
        ),
      expected: /checkpoint: no signature by a known key/,
    },
    {
      name: 'an inclusion proof of the filtered bundle is altered',
      bundle: () => filtered,
      change: (p) => {
        const proofs = JSON.parse(readFileSync(p('proofs.json'), 'utf8')) as {
          inclusion: Array<{ proof: string[] }>;
        };
        const first = proofs.inclusion[0]!;
        first.proof[0] = Buffer.alloc(32, 7).toString('base64');
        writeFileSync(p('proofs.json'), JSON.stringify(proofs));
      },
      expected: /inclusion proof of entry \d+: does not verify/,
    },
  ];

  it.each(cases)('when $name, then it rejects the bundle and says where', async (c) => {
    const copy = tampered(c.bundle(), c.name.replaceAll(' ', '-'), (f) => c.change(f.path));
    const result = await python([copy]);
    expect(result.code, result.stdout).toBe(1);
    expect(result.stdout).toMatch(c.expected);
  });

  it('when an entry is changed, then it names the same first bad entry as flowloom audit verify', async () => {
    const copy = tampered(full, 'cross-check', (f) =>
      editLines(f.path('entries.jsonl'), (l) =>
        l.map((x, i) => (i === 30 ? x.replace('"project":"zeus"', '"project":"hera"') : x)),
      ),
    );
    const [ours, theirs] = await Promise.all([
      python([copy]),
      runCli(['audit', 'verify', copy], cleanEnv({}), 90_000),
    ]);
    expect(theirs.code).not.toBe(0);
    const named = /First bad entry: (\d+) \((\w+)\)/;
    expect(ours.stdout.match(named)?.slice(1)).toEqual(['30', 'changed']);
    expect((theirs.stdout + theirs.stderr).match(named)?.slice(1)).toEqual(['30', 'changed']);
  });
});

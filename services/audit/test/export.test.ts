import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey, leafHash, parseProofs, prunedLeafHash, verifyInclusion } from '@flowloom/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryBundleWriter, readBundleDir } from '../src/adapters/bundle-files.js';
import { describeFilter, exportBundle } from '../src/app/export.js';
import { LocalAuditSource } from '../src/app/local-source.js';
import { verifyEvidenceBundle } from '../src/app/verify-bundle.js';
import type { TestDatabase } from './databases.js';
import { openTestDatabase, openTestLedger, requestEvent, type TestLedger, tempDir } from './support.js';

// Evidence bundles (libs/ledger/BUNDLE-FORMAT.md) written by the exporter and checked offline.

const OLD = new Date('2020-06-01T00:00:00Z');
const JAN = new Date('2030-01-15T12:00:00Z');

describe('evidence export', () => {
  let database: TestDatabase;
  let t: TestLedger;
  let source: LocalAuditSource;
  const dirs: Array<{ remove(): void }> = [];

  async function exportTo(filter?: Parameters<typeof exportBundle>[2]): Promise<string> {
    const dir = tempDir('flowloom-bundle-');
    dirs.push(dir);
    const writer = await DirectoryBundleWriter.create(join(dir.path, 'bundle'));
    await exportBundle(source, writer, { pageSize: 16, ...filter });
    return join(dir.path, 'bundle');
  }

  beforeAll(async () => {
    database = await openTestDatabase('pglite');
    t = await openTestLedger(database.db);
    source = new LocalAuditSource(t.ledger, 'test');
    await t.ledger.append(
      Array.from({ length: 20 }, (_, i) => requestEvent(i, { at: OLD, failed: i % 4 === 0 })),
    );
    await t.ledger.checkpoint();
    await t.ledger.rotateKey('test-admin');
    await t.ledger.append(
      Array.from({ length: 30 }, (_, i) =>
        requestEvent(100 + i, { at: JAN, project: i % 3 === 0 ? 'apollo' : 'gemini' }),
      ),
    );
    await t.ledger.checkpoint();
    // Retention removes the old failed requests' content.
    await t.ledger.applyRetention([{ pattern: 'dev.flowloom.gateway.request.failed.v1', days: 365 }]);
  });
  afterAll(async () => {
    await t?.ledger.close();
    t?.cleanup();
    await database?.drop();
    for (const dir of dirs) dir.remove();
  });

  it('when the whole log is exported, then the bundle verifies offline across the key rotation and pruning', async () => {
    const dir = await exportTo();
    const bundle = await readBundleDir(dir);
    const report = verifyEvidenceBundle(bundle);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, entryCount: t.ledger.size, prunedCount: 5 });
    const proofs = parseProofs(bundle.proofs ?? '');
    expect(proofs.checkpoints.length).toBeGreaterThanOrEqual(2);
    // Two keys: the rotated one signed the early checkpoints, both are published.
    expect(bundle.publicKey.trim().split('\n')).toHaveLength(2);
    const manifest = JSON.parse(bundle.manifest ?? '{}');
    expect(manifest).toMatchObject({
      format: 'flowloom.audit.export.v1',
      treeSize: t.ledger.size,
      filter: null,
      entries: { total: t.ledger.size, withheld: 0, pruned: 5 },
    });
  });

  it('when the export is filtered, then withheld entries are markers, every exported entry has its proof, and it still verifies', async () => {
    const dir = await exportTo({ filter: { project: 'apollo', from: JAN } });
    const bundle = await readBundleDir(dir);
    const report = verifyEvidenceBundle(bundle);
    expect(report.problems).toEqual([]);
    const lines = readFileSync(join(dir, 'entries.jsonl'), 'utf8').trimEnd().split('\n');
    const full = lines.filter((line) => prunedLeafHash(Buffer.from(line)) === undefined);
    expect(full).toHaveLength(10);
    for (const line of full) expect(JSON.parse(line).data.project).toBe('apollo');
    const proofs = parseProofs(bundle.proofs ?? '');
    const root = report.checkpoint?.rootHash ?? new Uint8Array();
    expect(proofs.inclusion.map((p) => p.index)).toEqual(
      lines.flatMap((line, i) => (prunedLeafHash(Buffer.from(line)) === undefined ? [i] : [])),
    );
    for (const { index, proof } of proofs.inclusion) {
      expect(
        verifyInclusion(index, lines.length, leafHash(Buffer.from(lines[index] ?? '')), proof, root),
      ).toBe(true);
    }
    expect(JSON.parse(bundle.manifest ?? '{}')).toMatchObject({
      filter: { project: 'apollo', from: JAN.toISOString() },
      entries: { exported: 10, pruned: 5 },
    });
  });

  it('when a manifest is written, then it has exactly the fields BUNDLE-FORMAT.md documents', async () => {
    const spec = readFileSync(new URL('../../../libs/ledger/BUNDLE-FORMAT.md', import.meta.url), 'utf8');
    const section = spec.slice(spec.indexOf('## 6. `manifest.json`'), spec.indexOf('## 7.'));
    const documented = [...section.matchAll(/^\| `([\w.]+)` +\|/gm)].map((m) => m[1]).sort();
    const fields = (value: Record<string, unknown>, prefix = ''): string[] =>
      Object.entries(value).flatMap(([key, v]) =>
        key !== 'filter' && typeof v === 'object' && v !== null
          ? fields(v as Record<string, unknown>, `${prefix}${key}.`)
          : [`${prefix}${key}`],
      );
    for (const filter of [undefined, { filter: { project: 'apollo' } }]) {
      const manifest = JSON.parse((await readBundleDir(await exportTo(filter))).manifest ?? '{}');
      expect(fields(manifest).sort()).toEqual(documented);
    }
    // The documented filter keys are the ones the exporter writes.
    const filterSection = spec.slice(
      spec.indexOf('## 7. Filtered exports'),
      spec.indexOf('**How it is verified.**'),
    );
    const filterKeys = [...filterSection.matchAll(/^\| `(\w+)` +\|/gm)].map((m) => m[1]).sort();
    const all = {
      from: JAN,
      to: JAN,
      type: 't',
      actor: 'a',
      keyId: 'k',
      project: 'p',
      job: 'j',
      outcome: 'o',
      text: 'w',
    };
    expect(Object.keys(describeFilter(all)).sort()).toEqual(filterKeys);
  });

  const tampering: Array<{ name: string; edit: (lines: string[]) => string[]; index: number; kind: string }> =
    [
      {
        name: 'a line is changed',
        edit: (l) => l.map((x, i) => (i === 25 ? x.replace('"requestId":"req-', '"requestId":"req-x') : x)),
        index: 25,
        kind: 'changed',
      },
      { name: 'a line is deleted', edit: (l) => l.filter((_, i) => i !== 22), index: 22, kind: 'deleted' },
      {
        name: 'a line is inserted',
        edit: (l) => [...l.slice(0, 30), '{"forged":true}', ...l.slice(30)],
        index: 30,
        kind: 'inserted',
      },
      {
        name: 'two lines are swapped',
        edit: (l) => l.map((x, i) => (i === 40 ? (l[41] ?? '') : i === 41 ? (l[40] ?? '') : x)),
        index: 40,
        kind: 'reordered',
      },
      { name: 'the end is cut off', edit: (l) => l.slice(0, 44), index: 44, kind: 'truncated' },
      {
        name: 'a pruned entry is swapped for another marker',
        edit: (l) => l.map((x, i) => (i === 4 ? `{"$pruned":"${'ab'.repeat(32)}"}` : x)),
        index: 4,
        kind: 'changed',
      },
    ];
  for (const c of tampering) {
    it(`when ${c.name} in an exported bundle, then offline verification fails naming entry ${c.index}`, async () => {
      const dir = await exportTo();
      const path = join(dir, 'entries.jsonl');
      const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
      writeFileSync(path, `${c.edit(lines).join('\n')}\n`);
      const report = verifyEvidenceBundle(await readBundleDir(dir));
      expect(report.ok).toBe(false);
      expect(report.firstBad).toMatchObject({ index: c.index, kind: c.kind });
    });
  }

  it('when the checkpoint is edited or signed by another key, then nothing in the bundle is trusted', async () => {
    const dir = await exportTo();
    const bundle = await readBundleDir(dir);
    const size = String(t.ledger.size);
    const forged = bundle.checkpoint.replace(`\n${size}\n`, `\n${Number(size) - 1}\n`);
    expect(verifyEvidenceBundle({ ...bundle, checkpoint: forged }).summary).toMatch(/FAILED: checkpoint/);
    const other = await openTestLedger(database.db, { origin: 'other.example/audit' }).catch(() => undefined);
    expect(other).toBeUndefined(); // one log per database: another origin is refused
    const stranger = generateKey('stranger.example/audit').verifierKey;
    const pinned = verifyEvidenceBundle(bundle, `${stranger}\n`);
    expect(pinned).toMatchObject({ ok: false, keys: 'pinned' });
    expect(verifyEvidenceBundle(bundle, bundle.publicKey)).toMatchObject({ ok: true, keys: 'pinned' });
  });
});

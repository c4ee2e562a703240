import { beforeAll, describe, expect, it } from 'vitest';
import { parseProofs, prunedMarker, serializeProofs, splitEntryLines } from './bundle-format.js';
import { type BundleInput, verifyBundle } from './bundle-verify.js';
import { signCheckpoint } from './checkpoint.js';
import { generateKey, parseVerifierKey } from './keys.js';
import { buildFixture, eventLine, type Fixture, ORIGIN } from './testing/bundle-fixture.js';
import { createPrng } from './testing/prng.js';

let fixture: Fixture;
beforeAll(async () => {
  fixture = await buildFixture(100, 25);
});

function verify(lines: readonly string[], overrides: Partial<BundleInput> = {}) {
  return verifyBundle({
    entries: lines,
    checkpoint: fixture.checkpoint,
    keys: fixture.keys,
    proofs: fixture.proofs,
    ...overrides,
  });
}

function without(lines: readonly string[], from: number, count = 1): string[] {
  return [...lines.slice(0, from), ...lines.slice(from + count)];
}

describe('evidence bundle verification', () => {
  it('when the bundle is untouched, then it verifies with old and new keys across a rotation', () => {
    const report = verify(fixture.lines);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.entryCount).toBe(100);
    expect(report.signedBy).toEqual([fixture.newKey.verifierKey]);
    expect(report.summary).toMatch(
      /^OK: 100 entries \(0 pruned\) match checkpoint audit\.test\/flowloom at size 100/,
    );
  });

  it('when an entry is changed, then the first bad index is that entry, kind changed', () => {
    const lines = [...fixture.lines];
    lines[37] = (lines[37] as string).replace('"seq":37', '"seq":38');
    const report = verify(lines);
    expect(report.ok).toBe(false);
    expect(report.firstBad).toMatchObject({ index: 37, kind: 'changed', exact: true });
    expect(report.summary).toMatch(/^FAILED: entry 37 was changed/);
  });

  it('when entries are deleted, then the first deleted index and count are named', () => {
    expect(verify(without(fixture.lines, 37)).firstBad).toMatchObject({
      index: 37,
      kind: 'deleted',
      count: 1,
    });
    expect(verify(without(fixture.lines, 0, 3)).firstBad).toMatchObject({
      index: 0,
      kind: 'deleted',
      count: 3,
    });
    expect(verify(without(fixture.lines, 98)).firstBad).toMatchObject({
      index: 98,
      kind: 'deleted',
      count: 1,
    });
  });

  it('when a line is inserted, then its index is named, kind inserted', () => {
    const forged = eventLine(1000);
    const lines = [...fixture.lines.slice(0, 37), forged, ...fixture.lines.slice(37)];
    expect(verify(lines).firstBad).toMatchObject({ index: 37, kind: 'inserted', count: 1, exact: true });
    const duplicate = [...fixture.lines.slice(0, 37), fixture.lines[5] as string, ...fixture.lines.slice(37)];
    expect(verify(duplicate).firstBad).toMatchObject({ index: 37, kind: 'inserted' });
    expect(verify([...fixture.lines, forged]).firstBad).toMatchObject({ index: 100, kind: 'inserted' });
  });

  it('when entries are reordered, then the first moved index is named, kind reordered', () => {
    const swapped = [...fixture.lines];
    [swapped[37], swapped[38]] = [swapped[38] as string, swapped[37] as string];
    expect(verify(swapped).firstBad).toMatchObject({ index: 37, kind: 'reordered' });
    const moved = without(fixture.lines, 10);
    moved.splice(60, 0, fixture.lines[10] as string);
    expect(verify(moved).firstBad).toMatchObject({ index: 10, kind: 'reordered' });
  });

  it('when the bundle is truncated, then the first missing index is named, kind truncated', () => {
    const report = verify(fixture.lines.slice(0, 80));
    expect(report.firstBad).toMatchObject({ index: 80, kind: 'truncated', count: 20 });
    expect(report.summary).toMatch(/entries 80\.\.99 are missing/);
    expect(verify([]).firstBad).toMatchObject({ index: 0, kind: 'truncated', count: 100 });
  });

  it('when entries are pruned to their leaf hash, then the bundle still verifies; a wrong marker is a change', async () => {
    const pruned = await buildFixture(40, 10, [3, 17, 39]);
    const input = { checkpoint: pruned.checkpoint, keys: pruned.keys, proofs: pruned.proofs };
    const report = verifyBundle({ ...input, entries: pruned.lines });
    expect(report.ok).toBe(true);
    expect(report.prunedCount).toBe(3);
    const lines = [...pruned.lines];
    lines[17] = prunedMarker(new Uint8Array(32));
    expect(verifyBundle({ ...input, entries: lines }).firstBad).toMatchObject({ index: 17, kind: 'changed' });
  });

  it('when the checkpoint is tampered or signed by an unknown key, then nothing is trusted', () => {
    const tampered = fixture.checkpoint.replace(/^(.*\n)100\n/, '$1101\n');
    expect(tampered).not.toBe(fixture.checkpoint);
    const report = verify(fixture.lines, { checkpoint: tampered });
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatchObject({ code: 'checkpoint' });
    expect(report.summary).toMatch(/invalid signature/);
    const stranger = generateKey(ORIGIN);
    expect(verify(fixture.lines, { keys: [parseVerifierKey(stranger.verifierKey)] }).summary).toMatch(
      /no signature from a known key/,
    );
    expect(verify(fixture.lines, { expectedOrigin: 'other.log' }).summary).toMatch(/not the expected log/);
  });

  it('when the retired key is not trusted, then earlier checkpoints it signed are reported', () => {
    const report = verify(fixture.lines, { keys: [parseVerifierKey(fixture.newKey.verifierKey)] });
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.code)).toEqual([
      'earlier-checkpoint',
      'earlier-checkpoint',
      'earlier-checkpoint',
    ]);
  });

  it('when an earlier checkpoint is not consistent with the final one, then the rewrite is reported', () => {
    const forkRoot = new Uint8Array(32).fill(7);
    const fork = signCheckpoint({ origin: ORIGIN, size: 50, rootHash: forkRoot, extensions: [] }, [
      fixture.oldKey.signer,
    ]);
    const proofs = {
      ...fixture.proofs,
      checkpoints: [{ checkpoint: fork, consistency: fixture.proofs.checkpoints[1]?.consistency ?? [] }],
    };
    const report = verify(fixture.lines, { proofs });
    expect(report.problems).toEqual([
      expect.objectContaining({
        code: 'earlier-checkpoint',
        message: expect.stringMatching(/not consistent/),
      }),
    ]);
  });

  it('when leafHashes are altered along with the entry, then earlier checkpoints bracket the damage', () => {
    const lines = [...fixture.lines];
    lines[60] = eventLine(1060);
    const leafHashes = Buffer.from(fixture.proofs.leafHashes as Uint8Array);
    leafHashes.fill(1, 60 * 32, 61 * 32);
    const report = verify(lines, { proofs: { ...fixture.proofs, leafHashes } });
    expect(report.firstBad).toMatchObject({ index: 50, before: 75, exact: false, kind: 'unknown' });
    expect(report.problems.map((p) => p.code)).toEqual(['entries', 'leaf-hashes']);
  });

  it('when only proofs.json is altered, then the bundle fails although every entry is genuine', () => {
    const leafHashes = Buffer.from(fixture.proofs.leafHashes as Uint8Array);
    leafHashes[5] = (leafHashes[5] as number) ^ 1;
    const report = verify(fixture.lines, { proofs: { ...fixture.proofs, leafHashes } });
    expect(report.ok).toBe(false);
    expect(report.firstBad).toBeUndefined();
    expect(report.problems[0]?.code).toBe('leaf-hashes');
    const inclusion = [{ index: 50, proof: fixture.proofs.inclusion[1]?.proof.slice(1) ?? [] }];
    expect(verify(fixture.lines, { proofs: { ...fixture.proofs, inclusion } }).problems[0]).toMatchObject({
      code: 'inclusion-proof',
      index: 50,
    });
  });

  it('when proofs.json is absent, then a change is still caught and a truncation at a checkpoint is exact', () => {
    const lines = [...fixture.lines];
    lines[60] = eventLine(1060);
    const report = verify(lines, { proofs: undefined });
    expect(report.firstBad).toMatchObject({ index: 0, exact: false, kind: 'unknown' });
    const noLeaves = { ...fixture.proofs, leafHashes: undefined };
    expect(verify(fixture.lines.slice(0, 75), { proofs: noLeaves }).firstBad).toMatchObject({
      index: 75,
      kind: 'truncated',
      exact: true,
    });
  });

  it('when any single random tamper is applied, then its position and kind are reported', () => {
    const prng = createPrng(20240611);
    const kinds = ['changed', 'deleted', 'inserted', 'reordered', 'truncated'] as const;
    for (let trial = 0; trial < 60; trial++) {
      const kind = kinds[trial % kinds.length] as (typeof kinds)[number];
      const at = prng.int(98);
      let lines = [...fixture.lines];
      if (kind === 'changed') lines[at] = `${lines[at]} `;
      if (kind === 'deleted') lines = without(lines, at);
      if (kind === 'inserted') lines.splice(at, 0, eventLine(5000 + trial));
      if (kind === 'reordered') [lines[at], lines[at + 1]] = [lines[at + 1] as string, lines[at] as string];
      if (kind === 'truncated') lines = lines.slice(0, at);
      expect(verify(lines).firstBad, `${kind} at ${at}`).toMatchObject({ index: at, kind, exact: true });
    }
  });
});

describe('evidence bundle files', () => {
  it('when proofs are serialised and parsed, then they round-trip and verify', () => {
    const parsed = parseProofs(serializeProofs(fixture.proofs));
    expect(parsed.treeSize).toBe(100);
    expect(
      Buffer.from(parsed.leafHashes as Uint8Array).equals(
        Buffer.from(fixture.proofs.leafHashes as Uint8Array),
      ),
    ).toBe(true);
    const file = Buffer.from(`${fixture.lines.join('\n')}\n`);
    expect(
      verifyBundle({
        entries: splitEntryLines(file),
        checkpoint: fixture.checkpoint,
        keys: fixture.keys,
        proofs: parsed,
      }).ok,
    ).toBe(true);
  });

  it('when proofs.json is malformed, then the field at fault is named', () => {
    const good = JSON.parse(serializeProofs(fixture.proofs)) as Record<string, unknown>;
    const cases: Array<[unknown, RegExp]> = [
      [{ ...good, format: 'x' }, /"format" must be/],
      [{ ...good, treeSize: -1 }, /"treeSize"/],
      [{ ...good, leafHashes: 'AAAA' }, /holds 3 bytes; 100 entries need 3200/],
      [{ ...good, inclusion: [{ index: 1.5, proof: [] }] }, /inclusion\[0\]\.index/],
      [
        { ...good, checkpoints: [{ checkpoint: 'x', consistency: ['AA=='] }] },
        /checkpoints\[0\]\.consistency\[0\]/,
      ],
    ];
    for (const [json, reason] of cases) expect(() => parseProofs(JSON.stringify(json))).toThrow(reason);
    expect(() => parseProofs('{')).toThrow(/not JSON/);
  });

  it('when entries.jsonl lacks a final newline, then the last line still counts', () => {
    const lines = [...splitEntryLines(Buffer.from('a\nb\n\nc'))].map((l) => Buffer.from(l).toString());
    expect(lines).toEqual(['a', 'b', '', 'c']);
  });
});

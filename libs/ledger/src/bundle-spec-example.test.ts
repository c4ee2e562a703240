import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseProofs, parsePublicKeyFile, prunedLeafHash, splitEntryLines } from './bundle-format.js';
import { verifyBundle } from './bundle-verify.js';
import { toBase64 } from './hash.js';
import { keyIdHex } from './keys.js';

// The worked example in BUNDLE-FORMAT.md §8 is executed, so the spec cannot drift from the code.
const spec = readFileSync(new URL('../BUNDLE-FORMAT.md', import.meta.url), 'utf8');
const files = new Map<string, string>();
for (const match of spec.matchAll(/```\w+ file=([\w.-]+)\n([\s\S]*?)```/g)) {
  files.set(match[1] as string, match[2] as string);
}
const file = (name: string): string => files.get(name) ?? '';

function verifyExample(entries: string) {
  return verifyBundle({
    entries: splitEntryLines(Buffer.from(entries)),
    checkpoint: file('checkpoint'),
    keys: parsePublicKeyFile(file('public-key')),
    proofs: parseProofs(file('proofs.json')),
    expectedOrigin: 'example.flowloom/audit',
  });
}

describe('BUNDLE-FORMAT.md worked example', () => {
  it('when the example bundle is verified, then it passes with one pruned entry', () => {
    expect([...files.keys()].sort()).toEqual([
      'checkpoint',
      'entries.jsonl',
      'manifest.json',
      'proofs.json',
      'public-key',
    ]);
    const report = verifyExample(file('entries.jsonl'));
    expect(report.problems).toEqual([]);
    expect(report.prunedCount).toBe(1);
    expect(report.entryCount).toBe(4);
  });

  it('when the example is tampered as the spec describes, then the spec outcome is reported', () => {
    const lines = file('entries.jsonl').split('\n');
    const swapped = [lines[1], lines[0], ...lines.slice(2)].join('\n');
    expect(verifyExample(swapped).firstBad).toMatchObject({ index: 0, kind: 'reordered' });
    const truncated = `${lines.slice(0, 3).join('\n')}\n`;
    expect(verifyExample(truncated).firstBad).toMatchObject({ index: 3, kind: 'truncated' });
  });

  it('when the example manifest is checked as §6 says, then every claim agrees with the signed data', () => {
    const manifest = JSON.parse(file('manifest.json'));
    const report = verifyExample(file('entries.jsonl'));
    const proofs = parseProofs(file('proofs.json'));
    const lines = [...splitEntryLines(Buffer.from(file('entries.jsonl')))];
    const markers = lines.filter((line) => prunedLeafHash(line) !== undefined).length;
    const signer = parsePublicKeyFile(file('public-key')).find((k) => report.signedBy.includes(k.text));
    expect(manifest).toEqual({
      format: 'flowloom.audit.export.v1',
      origin: report.checkpoint?.origin,
      treeSize: report.checkpoint?.size,
      rootHash: toBase64(report.checkpoint?.rootHash ?? new Uint8Array()),
      checkpointKeyId: keyIdHex(signer?.keyId ?? 0),
      createdAt: expect.any(String),
      source: expect.any(String),
      filter: null,
      entries: { total: lines.length, exported: lines.length - markers, withheld: 0, pruned: markers },
      inclusionProofs: proofs.inclusion.length,
      earlierCheckpoints: proofs.checkpoints.length,
      note: expect.stringContaining('$pruned'),
    });
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseProofs, parsePublicKeyFile, splitEntryLines } from './bundle-format.js';
import { verifyBundle } from './bundle-verify.js';

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
    expect([...files.keys()].sort()).toEqual(['checkpoint', 'entries.jsonl', 'proofs.json', 'public-key']);
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
});

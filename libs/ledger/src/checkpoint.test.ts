import { describe, expect, it } from 'vitest';
import { openCheckpoint, parseCheckpointBody, signCheckpoint } from './checkpoint.js';
import { sha256 } from './hash.js';
import { generateKey, parseVerifierKey } from './keys.js';

const ROOT = sha256(Buffer.from('root'));
const ROOT_B64 = Buffer.from(ROOT).toString('base64');

describe('C2SP tlog checkpoints', () => {
  it('when a checkpoint is signed, then its note has the exact C2SP layout and opens', () => {
    const key = generateKey('audit.example/log');
    const note = signCheckpoint(
      { origin: 'audit.example/log', size: 20852163, rootHash: ROOT, extensions: [] },
      [key.signer],
    );
    const [body, signature] = note.split('\n\n');
    expect(body).toBe(`audit.example/log\n20852163\n${ROOT_B64}`);
    expect(signature).toMatch(/^— audit\.example\/log [A-Za-z0-9+/]{91}=\n$/);
    const opened = openCheckpoint(note, [parseVerifierKey(key.verifierKey)], 'audit.example/log');
    expect(opened.checkpoint.size).toBe(20852163);
    expect(Buffer.from(opened.checkpoint.rootHash).equals(Buffer.from(ROOT))).toBe(true);
  });

  it('when any single byte of a signed checkpoint is flipped, then it no longer opens', () => {
    const key = generateKey('audit.example/log');
    const keys = [parseVerifierKey(key.verifierKey)];
    const note = Buffer.from(
      signCheckpoint({ origin: 'audit.example/log', size: 42, rootHash: ROOT, extensions: [] }, [key.signer]),
    );
    expect(openCheckpoint(note, keys).checkpoint.size).toBe(42);
    for (let i = 0; i < note.length; i++) {
      for (const bit of [0x01, 0x20]) {
        const tampered = Buffer.from(note);
        tampered[i] = (tampered[i] as number) ^ bit;
        expect(() => openCheckpoint(tampered, keys), `byte ${i} ^ ${bit}`).toThrow();
      }
    }
  });

  it('when a checkpoint has extension lines, then they round-trip and are signed', () => {
    const key = generateKey('log');
    const note = signCheckpoint({ origin: 'log', size: 0, rootHash: ROOT, extensions: ['ext one'] }, [
      key.signer,
    ]);
    expect(openCheckpoint(note, [parseVerifierKey(key.verifierKey)]).checkpoint.extensions).toEqual([
      'ext one',
    ]);
    expect(() =>
      openCheckpoint(note.replace('ext one', 'ext two'), [parseVerifierKey(key.verifierKey)]),
    ).toThrow(/invalid signature/);
  });

  it('when the body is malformed, then the reason is named', () => {
    const cases: Array<[string, RegExp]> = [
      [`log\n5\n`, /needs an origin, a tree size and a root hash/],
      [`\n5\n${ROOT_B64}\n`, /origin line is empty/],
      [`log\n05\n${ROOT_B64}\n`, /without leading zeros/],
      [`log\n-1\n${ROOT_B64}\n`, /decimal digits/],
      [`log\n9007199254740993\n${ROOT_B64}\n`, /exceeds 2\^53/],
      [`log\n5\n${ROOT_B64.slice(0, -4)}\n`, /32 bytes/],
      [`log\n5\nnot base64!\n`, /canonical base64/],
      [`log\n5\n${ROOT_B64}`, /end with a newline/],
    ];
    for (const [body, reason] of cases) expect(() => parseCheckpointBody(body), body).toThrow(reason);
  });

  it('when the origin is not the expected log, then the checkpoint is refused', () => {
    const key = generateKey('other');
    const note = signCheckpoint({ origin: 'other', size: 1, rootHash: ROOT, extensions: [] }, [key.signer]);
    expect(() => openCheckpoint(note, [parseVerifierKey(key.verifierKey)], 'audit.example/log')).toThrow(
      /not the expected log/,
    );
  });
});

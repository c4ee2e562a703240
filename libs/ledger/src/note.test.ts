import { describe, expect, it } from 'vitest';
import { generateKey, parseSignerKey, parseVerifierKey, verifierFor } from './keys.js';
import { openSignedNote, parseSignedNote, signNote } from './note.js';

// Published vectors of golang.org/x/mod/sumdb/note (note_test.go), the reference implementation
// of the C2SP signed-note format.
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG =
  '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG =
  '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

describe('C2SP signed notes', () => {
  it('when the published signer key signs the published text, then the note is byte-identical', () => {
    const signer = parseSignerKey(PETER_SKEY);
    expect(signer.keyId).toBe(0xc74f20a3);
    expect(verifierFor(signer).text).toBe(PETER_VKEY);
    expect(signNote(TEXT, [signer])).toBe(`${TEXT}\n${PETER_SIG}`);
  });

  it('when a note has a known and an unknown signature, then it opens with the unknown one ignored', () => {
    const peter = parseVerifierKey(PETER_VKEY);
    const opened = openSignedNote(`${TEXT}\n${PETER_SIG}${ENOCH_SIG}`, [peter]);
    expect(opened.text).toBe(TEXT);
    expect(opened.verifiedBy.map((k) => k.name)).toEqual(['PeterNeumann']);
    expect(opened.unknownSignatures.map((s) => s.name)).toEqual(['EnochRoot']);
    const both = openSignedNote(`${TEXT}\n${PETER_SIG}${ENOCH_SIG}`, [peter, parseVerifierKey(ENOCH_VKEY)]);
    expect(both.verifiedBy).toHaveLength(2);
  });

  it('when no known key signed the note, then it is rejected as unverified', () => {
    expect(() => openSignedNote(`${TEXT}\n${ENOCH_SIG}`, [parseVerifierKey(PETER_VKEY)])).toThrow(
      /no signature from a known key \(signed by: EnochRoot\+af0cfe78\)/,
    );
    expect(() => openSignedNote(`${TEXT}\n${PETER_SIG}`, [])).toThrow(/no signature from a known key/);
  });

  it('when a known signature or the text is altered, then the whole note is rejected', () => {
    const peter = [parseVerifierKey(PETER_VKEY)];
    const badSig = `${TEXT}\n${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`;
    expect(() => openSignedNote(badSig, peter)).toThrow(/invalid signature for key PeterNeumann\+c74f20a3/);
    expect(() => openSignedNote(`${TEXT.replace('answer', 'answers')}\n${PETER_SIG}`, peter)).toThrow(
      /invalid signature/,
    );
    // Every single-byte change of the body or signature must be caught.
    const note = Buffer.from(`${TEXT}\n${PETER_SIG}`, 'utf8');
    for (let i = 0; i < note.length; i++) {
      const tampered = Buffer.from(note);
      tampered[i] = (tampered[i] as number) ^ 0x01;
      expect(() => openSignedNote(tampered, peter), `byte ${i}`).toThrow();
    }
  });

  it('when the note is malformed, then parsing fails with a clear reason', () => {
    const cases: Array<[string, RegExp]> = [
      [TEXT, /no blank line/],
      [`${TEXT}\n`, /must start with "— "/],
      [`${TEXT}\n${PETER_SIG.slice(0, -1)}`, /must end with a newline/],
      [`\u0001${TEXT}\n${PETER_SIG}`, /control character/],
      [`${TEXT}\r\n${PETER_SIG}`, /control character/],
      [
        `${TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
        /base64|invalid key name/,
      ],
      [`${TEXT}\n${PETER_SIG}Unexpected line.\n`, /signature line 2 must start/],
      [`${TEXT}\n— PeterNeumann AAAA\n`, /too short/],
      [`${TEXT}\n— PeterNeumann not*base64\n`, /canonical base64/],
      [`${TEXT}\n${PETER_SIG.repeat(101)}`, /more than 100 signatures/],
    ];
    for (const [note, reason] of cases) expect(() => parseSignedNote(note), note).toThrow(reason);
    expect(() => parseSignedNote(Buffer.from([0xff, 0x0a, 0x0a]))).toThrow(/not valid UTF-8/);
  });

  it('when verifier keys are mangled, then they are refused', () => {
    const bad = [
      'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      'PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==',
      'PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      'PeterNeumann+c74f20a3',
      'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      'PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    ];
    for (const vkey of bad) expect(() => parseVerifierKey(vkey), vkey).toThrow();
    for (let cut = 1; cut < PETER_VKEY.length; cut++) {
      expect(() => parseVerifierKey(PETER_VKEY.slice(0, cut))).toThrow();
    }
  });

  it('when keys rotate, then notes signed by the old key still open with both keys known', () => {
    const oldKey = generateKey('audit.example/log');
    const newKey = generateKey('audit.example/log');
    expect(oldKey.signer.keyId).not.toBe(newKey.signer.keyId);
    const oldNote = signNote('audit.example/log\n1\n', [oldKey.signer]);
    const newNote = signNote('audit.example/log\n2\n', [newKey.signer]);
    const keys = [parseVerifierKey(newKey.verifierKey), parseVerifierKey(oldKey.verifierKey)];
    expect(openSignedNote(oldNote, keys).verifiedBy[0]?.text).toBe(oldKey.verifierKey);
    expect(openSignedNote(newNote, keys).verifiedBy[0]?.text).toBe(newKey.verifierKey);
    expect(() => openSignedNote(oldNote, [parseVerifierKey(newKey.verifierKey)])).toThrow(/known key/);
    expect(parseSignerKey(newKey.signerKey).keyId).toBe(newKey.signer.keyId);
  });
});

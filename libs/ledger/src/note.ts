import { decodeBase64, decodeUtf8 } from './encoding.js';
import { LedgerError } from './errors.js';
import { isValidKeyName, keyIdHex, type SignerKey, type VerifierKey } from './keys.js';

// C2SP signed-note (c2sp.org/signed-note): text ending in "\n", a blank line, then one or more
// lines "— <key name> <base64(4-byte key id ‖ signature)>\n".

const EM_DASH_PREFIX = '\u2014 ';
/** Above the spec's minimum of 16; bounds work done on hostile input. */
const MAX_SIGNATURES = 100;
const MAX_NOTE_BYTES = 1 << 20;

export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The signature bytes after the key id. */
  readonly signature: Uint8Array;
}

export interface ParsedNote {
  /** The signed text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export interface OpenedNote extends ParsedNote {
  /** Known keys whose signatures verified. */
  readonly verifiedBy: readonly VerifierKey[];
  /** Signatures by keys not in the list; ignored as the spec requires (witnesses, rotation). */
  readonly unknownSignatures: readonly NoteSignature[];
}

function malformed(reason: string): never {
  throw new LedgerError('malformed_note', `malformed signed note: ${reason}`);
}

/** Strictly parses a signed note without verifying it. */
export function parseSignedNote(note: string | Uint8Array): ParsedNote {
  let text: string;
  if (typeof note === 'string') {
    text = note;
  } else {
    if (note.length > MAX_NOTE_BYTES) malformed('larger than 1 MiB');
    text = decodeUtf8(note) ?? malformed('not valid UTF-8');
  }
  if (text.length > MAX_NOTE_BYTES) malformed('larger than 1 MiB');
  if (/[\uD800-\uDFFF]/u.test(text)) malformed('not valid Unicode');
  if (hasControlCharacter(text)) malformed('contains a control character other than newline');
  if (!text.endsWith('\n')) malformed('must end with a newline');
  const split = text.lastIndexOf('\n\n');
  if (split < 0) malformed('no blank line separates the text from the signatures');
  const body = text.slice(0, split + 1);
  const lines = text.slice(split + 2, -1).split('\n');
  if (body.length === 0 || body === '\n') malformed('the text is empty');
  if (lines.length > MAX_SIGNATURES) malformed(`more than ${MAX_SIGNATURES} signatures`);
  return { text: body, signatures: lines.map((line, i) => parseSignatureLine(line, i + 1)) };
}

/** Any character below U+0020 except newline (signed-note §Format). */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 && code !== 0x0a) return true;
  }
  return false;
}

function parseSignatureLine(line: string, number: number): NoteSignature {
  if (!line.startsWith(EM_DASH_PREFIX)) malformed(`signature line ${number} must start with "— "`);
  const rest = line.slice(EM_DASH_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) malformed(`signature line ${number} must be "— <key name> <base64 signature>"`);
  const name = rest.slice(0, space);
  if (!isValidKeyName(name)) malformed(`signature line ${number} has an invalid key name`);
  const bytes = decodeBase64(rest.slice(space + 1));
  if (bytes === undefined) malformed(`signature line ${number} is not canonical base64`);
  if (bytes.length < 5) malformed(`signature line ${number} is too short to hold a key id and signature`);
  return {
    name,
    keyId: Buffer.from(bytes).readUInt32BE(0),
    signature: bytes.subarray(4),
  };
}

function signatureLine(name: string, keyId: number, signature: Uint8Array): string {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(keyId >>> 0);
  return `${EM_DASH_PREFIX}${name} ${Buffer.concat([id, signature]).toString('base64')}\n`;
}

/** Signs `text` (which must end in a newline) with every signer. */
export function signNote(text: string, signers: readonly SignerKey[]): string {
  if (signers.length === 0) throw new LedgerError('invalid_argument', 'a note needs at least one signer');
  // Round-trip the result through the parser so the signer can never emit a note it would reject.
  const lines = signers.map((s) => signatureLine(s.name, s.keyId, s.sign(Buffer.from(text, 'utf8'))));
  const note = `${text}\n${lines.join('')}`;
  const parsed = parseSignedNote(note);
  if (parsed.text !== text) malformed('the text must end with a newline and not with a blank line');
  return note;
}

/**
 * Parses and verifies a note against known keys. Accepts it when at least one known key signed it
 * and every signature from a known key verifies; unknown signatures are ignored. Keep retired
 * keys in the list so checkpoints they signed stay verifiable after a rotation.
 */
export function openSignedNote(note: string | Uint8Array, keys: readonly VerifierKey[]): OpenedNote {
  const parsed = parseSignedNote(note);
  const message = Buffer.from(parsed.text, 'utf8');
  const verifiedBy: VerifierKey[] = [];
  const unknownSignatures: NoteSignature[] = [];
  for (const signature of parsed.signatures) {
    const key = findKey(keys, signature.name, signature.keyId);
    if (key === undefined) {
      unknownSignatures.push(signature);
      continue;
    }
    if (!key.verify(message, signature.signature)) {
      throw new LedgerError(
        'bad_signature',
        `invalid signature for key ${key.name}+${keyIdHex(key.keyId)}: the note was altered or forged`,
      );
    }
    if (!verifiedBy.includes(key)) verifiedBy.push(key);
  }
  if (verifiedBy.length === 0) {
    const seen = parsed.signatures.map((s) => `${s.name}+${keyIdHex(s.keyId)}`).join(', ');
    throw new LedgerError('unverified_note', `note has no signature from a known key (signed by: ${seen})`);
  }
  return { ...parsed, verifiedBy, unknownSignatures };
}

function findKey(keys: readonly VerifierKey[], name: string, keyId: number): VerifierKey | undefined {
  const matches = keys.filter((k) => k.name === name && k.keyId === keyId);
  const first = matches[0];
  if (first !== undefined && matches.some((k) => Buffer.compare(k.publicKey, first.publicKey) !== 0)) {
    throw new LedgerError('invalid_key', `ambiguous key ${name}+${keyIdHex(keyId)}: two known keys share it`);
  }
  return first;
}

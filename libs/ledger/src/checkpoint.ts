import { decodeBase64 } from './encoding.js';
import { LedgerError } from './errors.js';
import { HASH_SIZE, toBase64 } from './hash.js';
import type { SignerKey, VerifierKey } from './keys.js';
import { type NoteSignature, openSignedNote, parseSignedNote, signNote } from './note.js';

// C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the note text is
//   <origin>\n<tree size>\n<base64 root hash>\n[<extension line>\n]*

export interface Checkpoint {
  /** Unique identity of the log, e.g. `audit.example.com/flowloom`. */
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** Opaque, non-empty extra lines; not recommended by the spec. */
  readonly extensions: readonly string[];
}

export interface VerifiedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly verifiedBy: readonly VerifierKey[];
  readonly unknownSignatures: readonly NoteSignature[];
  /** The signed note exactly as verified. */
  readonly note: string;
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

function malformed(reason: string): never {
  throw new LedgerError('malformed_checkpoint', `malformed checkpoint: ${reason}`);
}

export function formatCheckpoint(checkpoint: Checkpoint): string {
  const text = [
    checkpoint.origin,
    String(checkpoint.size),
    toBase64(checkpoint.rootHash),
    ...checkpoint.extensions,
  ].join('\n');
  const body = `${text}\n`;
  // Format through the parser: a checkpoint we emit must be one we accept.
  parseCheckpointBody(body);
  return body;
}

/** Parses note text (not the signatures) as a checkpoint body. */
export function parseCheckpointBody(text: string): Checkpoint {
  if (!text.endsWith('\n')) malformed('the text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  const [origin, size, root, ...extensions] = lines;
  if (origin === undefined || size === undefined || root === undefined) {
    malformed('needs an origin, a tree size and a root hash line');
  }
  if (origin.length === 0) malformed('the origin line is empty');
  if (!DECIMAL.test(size)) malformed(`tree size "${size}" must be decimal digits without leading zeros`);
  const treeSize = Number(size);
  if (!Number.isSafeInteger(treeSize)) malformed(`tree size ${size} exceeds 2^53 - 1`);
  const rootHash = decodeBase64(root);
  if (rootHash === undefined || rootHash.length !== HASH_SIZE) {
    malformed('the root hash must be canonical base64 of 32 bytes');
  }
  if (extensions.some((line) => line.length === 0)) malformed('extension lines must not be empty');
  return { origin, size: treeSize, rootHash, extensions };
}

export function signCheckpoint(checkpoint: Checkpoint, signers: readonly SignerKey[]): string {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/** Parses a signed checkpoint without checking signatures (for display; never trust it). */
export function parseCheckpointNote(note: string | Uint8Array): Checkpoint {
  return parseCheckpointBody(parseSignedNote(note).text);
}

/**
 * Verifies a signed checkpoint against known keys (old keys included after a rotation) and,
 * when given, that it is for the expected log origin.
 */
export function openCheckpoint(
  note: string | Uint8Array,
  keys: readonly VerifierKey[],
  expectedOrigin?: string,
): VerifiedCheckpoint {
  const opened = openSignedNote(note, keys);
  const checkpoint = parseCheckpointBody(opened.text);
  if (expectedOrigin !== undefined && checkpoint.origin !== expectedOrigin) {
    malformed(`origin "${checkpoint.origin}" is not the expected log "${expectedOrigin}"`);
  }
  return {
    checkpoint,
    verifiedBy: opened.verifiedBy,
    unknownSignatures: opened.unknownSignatures,
    note: typeof note === 'string' ? note : Buffer.from(note).toString('utf8'),
  };
}

import { hash } from 'node:crypto';

/** SHA-256 output size; every hash in the ledger has this length. */
export const HASH_SIZE = 32;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

// One scratch buffer for node hashing: the one-shot `crypto.hash` over a reused 65-byte buffer is
// the fastest SHA-256 Node offers and avoids an allocation per concatenation.
const nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeInput[0] = NODE_PREFIX;

/** RFC 9162 §2.1.1: MTH of the empty tree, SHA-256 of the empty string. */
export const EMPTY_ROOT_HASH: Uint8Array = sha256(new Uint8Array(0));

export function sha256(data: Uint8Array): Uint8Array {
  return hash('sha256', data, 'buffer');
}

// Reused for entries up to 64 KiB (verification hashes millions in a row); larger ones get their
// own buffer so one huge entry does not pin memory.
const LEAF_SCRATCH_BYTES = 1 << 16;
const leafInput = new Uint8Array(LEAF_SCRATCH_BYTES);
const leafText = Buffer.from(leafInput.buffer, 0, LEAF_SCRATCH_BYTES);

/** RFC 9162 leaf hash: SHA-256(0x00 ‖ entry). */
export function leafHash(entry: Uint8Array): Uint8Array {
  const length = entry.length + 1;
  const input = length <= LEAF_SCRATCH_BYTES ? leafInput : new Uint8Array(length);
  input[0] = LEAF_PREFIX;
  input.set(entry, 1);
  return hash('sha256', new Uint8Array(input.buffer, 0, length), 'buffer');
}

/**
 * RFC 9162 leaf hash of text as UTF-8 (lone surrogates as U+FFFD, like Buffer.from). The text is
 * encoded straight into the scratch buffer: appends hash every entry they write, and encoding it
 * into a buffer of its own first cost an allocation and a copy per entry.
 */
export function leafHashOfText(text: string): Uint8Array {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  if (1 + text.length * 3 > LEAF_SCRATCH_BYTES) return leafHash(Buffer.from(text, 'utf8'));
  leafInput[0] = LEAF_PREFIX;
  const length = 1 + leafText.write(text, 1, 'utf8');
  return hash('sha256', new Uint8Array(leafInput.buffer, 0, length), 'buffer');
}

/** RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return hash('sha256', nodeInput, 'buffer');
}

export function isHash(value: Uint8Array): boolean {
  return value.length === HASH_SIZE;
}

export function hashesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

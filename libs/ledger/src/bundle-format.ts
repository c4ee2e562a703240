import { decodeBase64, decodeHex } from './encoding.js';
import { PRUNED_MARKER_PREFIX } from './entry.js';
import { LedgerError } from './errors.js';
import { HASH_SIZE, toBase64, toHex } from './hash.js';
import { parseVerifierKey, type VerifierKey } from './keys.js';

// The file formats of an evidence bundle, as specified in libs/ledger/BUNDLE-FORMAT.md.

export const PROOFS_FORMAT = 'flowloom.audit.proofs.v1';

/** An earlier signed checkpoint and the consistency proof from its tree to the bundle's tree. */
export interface EarlierCheckpoint {
  readonly checkpoint: string;
  readonly consistency: readonly Uint8Array[];
}

export interface InclusionEvidence {
  readonly index: number;
  readonly proof: readonly Uint8Array[];
}

/** proofs.json, decoded. */
export interface BundleProofs {
  readonly treeSize: number;
  /** Leaf hash of every entry, packed (treeSize × 32 bytes): pins down the first bad entry. */
  readonly leafHashes?: Uint8Array | undefined;
  readonly checkpoints: readonly EarlierCheckpoint[];
  readonly inclusion: readonly InclusionEvidence[];
}

interface ProofsJson {
  format: string;
  treeSize: number;
  leafHashes?: string;
  checkpoints?: Array<{ checkpoint: string; consistency: string[] }>;
  inclusion?: Array<{ index: number; proof: string[] }>;
}

function malformed(reason: string): never {
  throw new LedgerError('malformed_bundle', `proofs.json: ${reason}`);
}

export function serializeProofs(proofs: BundleProofs): string {
  const json: ProofsJson = { format: PROOFS_FORMAT, treeSize: proofs.treeSize };
  if (proofs.leafHashes !== undefined) json.leafHashes = toBase64(proofs.leafHashes);
  json.checkpoints = proofs.checkpoints.map((c) => ({
    checkpoint: c.checkpoint,
    consistency: c.consistency.map(toBase64),
  }));
  json.inclusion = proofs.inclusion.map((p) => ({ index: p.index, proof: p.proof.map(toBase64) }));
  return `${JSON.stringify(json, null, 1)}\n`;
}

export function parseProofs(text: string): BundleProofs {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    malformed(`not JSON (${(error as Error).message})`);
  }
  if (!isRecord(json)) malformed('must be a JSON object');
  if (json['format'] !== PROOFS_FORMAT) malformed(`"format" must be "${PROOFS_FORMAT}"`);
  const treeSize = json['treeSize'];
  if (typeof treeSize !== 'number' || !Number.isSafeInteger(treeSize) || treeSize < 0) {
    malformed('"treeSize" must be a whole number ≥ 0');
  }
  let leafHashes: Uint8Array | undefined;
  if (json['leafHashes'] !== undefined) {
    const encoded = json['leafHashes'];
    leafHashes = typeof encoded === 'string' ? decodeBase64(encoded) : undefined;
    if (leafHashes === undefined) malformed('"leafHashes" must be canonical base64');
    if (leafHashes.length !== treeSize * HASH_SIZE) {
      malformed(
        `"leafHashes" holds ${leafHashes.length} bytes; ${treeSize} entries need ${treeSize * HASH_SIZE}`,
      );
    }
  }
  const checkpoints = arrayField(json, 'checkpoints').map((item, i): EarlierCheckpoint => {
    if (!isRecord(item) || typeof item['checkpoint'] !== 'string') {
      malformed(`checkpoints[${i}].checkpoint must be the signed checkpoint text`);
    }
    return {
      checkpoint: item['checkpoint'],
      consistency: hashArray(item['consistency'], `checkpoints[${i}].consistency`),
    };
  });
  const inclusion = arrayField(json, 'inclusion').map((item, i): InclusionEvidence => {
    const index = isRecord(item) ? item['index'] : undefined;
    if (!isRecord(item) || typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) {
      malformed(`inclusion[${i}].index must be a whole number ≥ 0`);
    }
    return { index, proof: hashArray(item['proof'], `inclusion[${i}].proof`) };
  });
  return { treeSize, leafHashes, checkpoints, inclusion };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function arrayField(json: Record<string, unknown>, name: string): unknown[] {
  const value = json[name];
  if (value === undefined) return [];
  if (!Array.isArray(value)) malformed(`"${name}" must be an array`);
  return value;
}

function hashArray(value: unknown, where: string): Uint8Array[] {
  if (!Array.isArray(value)) malformed(`${where} must be an array of base64 hashes`);
  return value.map((item, i) => {
    const hash = typeof item === 'string' ? decodeBase64(item) : undefined;
    if (hash === undefined || hash.length !== HASH_SIZE)
      malformed(`${where}[${i}] must be base64 of 32 bytes`);
    return hash;
  });
}

/** The entries.jsonl line that stands for a pruned entry: its content is gone, its leaf hash stays. */
export function prunedMarker(leafHash: Uint8Array): string {
  if (leafHash.length !== HASH_SIZE) throw new LedgerError('invalid_argument', 'a leaf hash is 32 bytes');
  return `${PRUNED_MARKER_PREFIX}${toHex(leafHash)}"}`;
}

const MARKER_LENGTH = PRUNED_MARKER_PREFIX.length + 2 * HASH_SIZE + 2;

/** The leaf hash a line declares when it is a well-formed pruned marker, else undefined. */
export function prunedLeafHash(line: Uint8Array): Uint8Array | undefined {
  if (line.length !== MARKER_LENGTH) return undefined;
  const text = Buffer.from(line.buffer, line.byteOffset, line.byteLength).toString('latin1');
  if (!text.startsWith(PRUNED_MARKER_PREFIX) || !text.endsWith('"}')) return undefined;
  return decodeHex(text.slice(PRUNED_MARKER_PREFIX.length, -2));
}

/**
 * The lines of entries.jsonl as views into `file` (no copies). Each line ends with "\n"; a final
 * line without one still counts, so a lost last newline cannot hide an entry.
 */
export function* splitEntryLines(file: Uint8Array): Generator<Uint8Array> {
  const bytes = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  let start = 0;
  while (start < bytes.length) {
    const end = bytes.indexOf(0x0a, start);
    if (end < 0) {
      yield bytes.subarray(start);
      return;
    }
    yield bytes.subarray(start, end);
    start = end + 1;
  }
}

/** public-key: one verifier key per line, current first, retired keys after; '#' starts a comment. */
export function formatPublicKeyFile(verifierKeys: readonly string[]): string {
  return `${verifierKeys.join('\n')}\n`;
}

export function parsePublicKeyFile(text: string): VerifierKey[] {
  const keys: VerifierKey[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      keys.push(parseVerifierKey(line));
    } catch (error) {
      throw new LedgerError('malformed_bundle', `public-key line ${i + 1}: ${(error as Error).message}`);
    }
  }
  if (keys.length === 0) throw new LedgerError('malformed_bundle', 'public-key holds no verifier key');
  return keys;
}

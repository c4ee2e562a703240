import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { decodeBase64, decodeHex } from './encoding.js';
import { LedgerError } from './errors.js';
import { sha256 } from './hash.js';

// C2SP signed-note Ed25519 keys, in the text encodings of golang.org/x/mod/sumdb/note so keys can
// be exchanged with Go tooling (and checked against its published vectors):
//   verifier key  <name>+<hex key id>+<base64(0x01 ‖ 32-byte public key)>
//   signer key    PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ 32-byte seed)>

const ALG_ED25519 = 0x01;
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
// Go's unicode.IsSpace set plus '+', which would make the text key encodings ambiguous.
const INVALID_NAME_CHAR = /[\s\u0085+\p{Cc}]/u;

export interface VerifierKey {
  readonly name: string;
  /** uint32 key id: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4], big-endian. */
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  /** The `vkey` text form. */
  readonly text: string;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

export interface SignerKey {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface GeneratedKey {
  readonly signer: SignerKey;
  /** Secret `PRIVATE+KEY+…` text; store it as a secret, never log it. */
  readonly signerKey: string;
  /** Public `vkey` text to publish and give auditors. */
  readonly verifierKey: string;
}

export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !INVALID_NAME_CHAR.test(name) && !/[\uD800-\uDFFF]/u.test(name);
}

function requireName(name: string): void {
  if (!isValidKeyName(name)) {
    throw new LedgerError(
      'invalid_key',
      `key name ${JSON.stringify(name)} must be non-empty, without spaces or "+"`,
    );
  }
}

export function ed25519KeyId(name: string, publicKey: Uint8Array): number {
  const digest = sha256(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.of(ALG_ED25519), publicKey]));
  return Buffer.from(digest).readUInt32BE(0);
}

export function keyIdHex(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

export function encodeVerifierKey(name: string, publicKey: Uint8Array): string {
  requireName(name);
  if (publicKey.length !== 32) throw new LedgerError('invalid_key', 'an Ed25519 public key is 32 bytes');
  const key = Buffer.concat([Buffer.of(ALG_ED25519), publicKey]).toString('base64');
  return `${name}+${keyIdHex(ed25519KeyId(name, publicKey))}+${key}`;
}

/** Splits `<name>+<hex id>+<base64>` (the base64 may itself contain '+'). */
function splitKeyText(text: string, what: string): { name: string; keyId: number; key: Uint8Array } {
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) throw new LedgerError('invalid_key', `${what} must look like <name>+<key id>+<key>`);
  const name = text.slice(0, first);
  const idHex = text.slice(first + 1, second);
  const key = decodeBase64(text.slice(second + 1));
  requireName(name);
  const id = idHex.length === 8 ? decodeHex(idHex) : undefined;
  if (id === undefined) throw new LedgerError('invalid_key', `${what} key id must be 8 lowercase hex digits`);
  if (key === undefined || key.length !== 33) {
    throw new LedgerError('invalid_key', `${what} key must be base64 of 33 bytes (algorithm byte + key)`);
  }
  if (key[0] !== ALG_ED25519) {
    throw new LedgerError(
      'invalid_key',
      `${what} uses signature algorithm ${key[0]}; only Ed25519 (1) is supported`,
    );
  }
  return { name, keyId: Buffer.from(id).readUInt32BE(0), key: key.subarray(1) };
}

export function parseVerifierKey(vkey: string): VerifierKey {
  const { name, keyId, key } = splitKeyText(vkey.trim(), 'verifier key');
  if (ed25519KeyId(name, key) !== keyId) {
    throw new LedgerError(
      'invalid_key',
      `verifier key id ${keyIdHex(keyId)} does not match its name and key`,
    );
  }
  return verifierFromPublicKey(name, key);
}

function verifierFromPublicKey(name: string, publicKey: Uint8Array): VerifierKey {
  const keyObject = createPublicKey({
    key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]),
    format: 'der',
    type: 'spki',
  });
  return {
    name,
    keyId: ed25519KeyId(name, publicKey),
    publicKey: Uint8Array.from(publicKey),
    text: encodeVerifierKey(name, publicKey),
    verify: (message, signature) => signature.length === 64 && verify(null, message, keyObject, signature),
  };
}

export function parseSignerKey(skey: string): SignerKey {
  const prefix = 'PRIVATE+KEY+';
  if (!skey.startsWith(prefix))
    throw new LedgerError('invalid_key', 'signer key must start with PRIVATE+KEY+');
  const { name, keyId, key } = splitKeyText(skey.slice(prefix.length).trim(), 'signer key');
  const signer = signerFromSeed(name, key);
  if (signer.keyId !== keyId) {
    throw new LedgerError('invalid_key', `signer key id ${keyIdHex(keyId)} does not match its name and key`);
  }
  return signer;
}

function signerFromSeed(name: string, seed: Uint8Array): SignerKey {
  const privateKey: KeyObject = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const publicKey = Uint8Array.from(spki.subarray(SPKI_ED25519_PREFIX.length));
  return {
    name,
    keyId: ed25519KeyId(name, publicKey),
    publicKey,
    sign: (message) => sign(null, message, privateKey),
  };
}

/** A new Ed25519 note key. Name it after the log origin, e.g. `audit.example.com/flowloom`. */
export function generateKey(name: string): GeneratedKey {
  requireName(name);
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const seed = pkcs8.subarray(PKCS8_ED25519_PREFIX.length);
  const signer = signerFromSeed(name, seed);
  return {
    signer,
    signerKey: encodeSignerKey(name, seed),
    verifierKey: encodeVerifierKey(name, signer.publicKey),
  };
}

/** The `PRIVATE+KEY+…` text of an Ed25519 key given by its 32-byte RFC 8032 seed (e.g. from a KMS). */
export function encodeSignerKey(name: string, seed: Uint8Array): string {
  requireName(name);
  if (seed.length !== 32) throw new LedgerError('invalid_key', 'an Ed25519 seed is 32 bytes');
  const signer = signerFromSeed(name, seed);
  const key = Buffer.concat([Buffer.of(ALG_ED25519), seed]).toString('base64');
  return `PRIVATE+KEY+${name}+${keyIdHex(signer.keyId)}+${key}`;
}

/** The public half of a signer, e.g. to publish next to checkpoints. */
export function verifierFor(signer: SignerKey): VerifierKey {
  return verifierFromPublicKey(signer.name, signer.publicKey);
}

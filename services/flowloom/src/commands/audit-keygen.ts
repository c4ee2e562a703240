import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FileSigningKeyStore } from '@flowloom/audit';
import {
  encodeSignerKey,
  generateKey,
  isValidKeyName,
  keyIdHex,
  parseSignerKey,
  verifierFor,
} from '@flowloom/ledger';
import { type Io, UsageError } from '../command.js';

export const KEYGEN_HELP = `  flowloom audit keygen --out FILE [--name ORIGIN] [--force] [--seed-file FILE]
      Create an audit signing key (Ed25519, C2SP signed-note text PRIVATE+KEY+<origin>+<key id>+...) in
      FILE, readable by its owner only (0600), and print its key id and public (verifier) key. For a key
      you manage, e.g. a Kubernetes Secret shared by audit replicas (deploy/README.md):
        kubectl create secret generic flowloom-audit-signing-key --from-file=signing-key=FILE
      --name ORIGIN     the log's name (audit.origin); default FLOWLOOM_AUDIT_ORIGIN. For an existing
                        log, its origin is in GET /api/v1/audit/info
      --force           replace FILE if it exists (without it an existing key is never overwritten)
      --seed-file FILE  derive the key from a 32-byte seed, base64 (the same seed and name always give
                        the same key: how the Helm chart turns the seed it generated into the key)`;

const options = {
  out: { type: 'string' },
  name: { type: 'string' },
  force: { type: 'boolean', default: false },
  'seed-file': { type: 'string' },
} as const;

/** The `PRIVATE+KEY+…` text: from the seed in `seedFile`, else a new random key. */
function signerKeyText(name: string, seedFile: string | undefined): string {
  if (seedFile === undefined) return generateKey(name).signerKey;
  const text = readFileSync(seedFile, 'utf8').trim();
  const seed = Buffer.from(text, 'base64');
  if (seed.length !== 32 || seed.toString('base64') !== text) {
    throw new Error(
      `${seedFile} must hold a 32-byte seed in base64 (44 characters), e.g. openssl rand -base64 32`,
    );
  }
  return encodeSignerKey(name, seed);
}

/** `flowloom audit keygen`: a signing key for a file or Secret the operator manages. */
export async function keygenCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.out) throw new UsageError('keygen needs --out FILE: where to write the key');
  const name = values.name ?? io.env.FLOWLOOM_AUDIT_ORIGIN;
  if (!name) {
    throw new UsageError(
      "keygen needs --name ORIGIN: the log's name (audit.origin, e.g. audit.example.com/flowloom), which every checkpoint carries; an existing log's origin is in GET /api/v1/audit/info",
    );
  }
  if (!isValidKeyName(name)) {
    throw new UsageError(`--name "${name}" is not a valid log name: no spaces and no "+"`);
  }
  const out = resolve(values.out);
  if (existsSync(out) && !values.force) {
    throw new Error(
      `${out} already exists and may be a log's key: not overwriting it. Choose another --out, or pass --force to replace it.`,
    );
  }
  const text = signerKeyText(name, values['seed-file']);
  await new FileSigningKeyStore(out).save(text);
  const signer = parseSignerKey(text);
  io.out(`Wrote the audit signing key of "${name}" to ${out} (0600). Keep it secret.`);
  io.out(`  key id:       ${keyIdHex(signer.keyId)}`);
  io.out(`  verifier key: ${verifierFor(signer).text}`);
  io.out(
    'Give the verifier key to auditors (flowloom audit verify --key FILE checks checkpoints against it).',
  );
  return 0;
}

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyIdHex, parseSignerKey, verifierFor } from '@flowloom/ledger';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import type { Io } from '../src/command.js';

const ORIGIN = 'audit.example.com/flowloom';

async function run(args: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env };
  const code = await main(['audit', 'keygen', ...args], io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('flowloom audit keygen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowloom-keygen-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('when asked for a key, then it writes one readable by its owner only and prints its key id and verifier key', async () => {
    const file = join(dir, 'secret', 'signing-key');
    const result = await run(['--out', file, '--name', ORIGIN]);
    expect(result.code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const signer = parseSignerKey(readFileSync(file, 'utf8').trim());
    expect(signer.name).toBe(ORIGIN);
    expect(result.out).toContain(`key id:       ${keyIdHex(signer.keyId)}`);
    expect(result.out).toContain(`verifier key: ${verifierFor(signer).text}`);
    expect(result.out).not.toContain('PRIVATE+KEY');
  });

  it('when the file exists, then it is left alone unless --force is given', async () => {
    const file = join(dir, 'existing');
    writeFileSync(file, 'the key of some log\n');
    const refused = await run(['--out', file, '--name', ORIGIN]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/already exists.*--force/);
    expect(readFileSync(file, 'utf8')).toBe('the key of some log\n');
    expect((await run(['--out', file, '--name', ORIGIN, '--force'])).code).toBe(0);
    expect(parseSignerKey(readFileSync(file, 'utf8').trim()).name).toBe(ORIGIN);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('when the name comes from FLOWLOOM_AUDIT_ORIGIN or is missing or invalid, then it is used or the usage says what to give', async () => {
    const file = join(dir, 'from-env');
    expect((await run(['--out', file], { FLOWLOOM_AUDIT_ORIGIN: 'env.example/audit' })).code).toBe(0);
    expect(parseSignerKey(readFileSync(file, 'utf8').trim()).name).toBe('env.example/audit');
    const noName = await run(['--out', join(dir, 'none')]);
    expect(noName.code).toBe(2);
    expect(noName.err).toMatch(/needs --name ORIGIN/);
    expect((await run(['--out', join(dir, 'bad'), '--name', 'a+b'])).code).toBe(2);
    expect((await run(['--name', ORIGIN])).err).toMatch(/needs --out FILE/);
  });

  it('when given a seed, then the same seed and name give the same key; a malformed seed is refused', async () => {
    const seed = join(dir, 'seed');
    writeFileSync(seed, `${Buffer.alloc(32, 7).toString('base64')}\n`);
    const a = join(dir, 'seeded-a');
    const b = join(dir, 'seeded-b');
    expect((await run(['--out', a, '--name', ORIGIN, '--seed-file', seed])).code).toBe(0);
    expect((await run(['--out', b, '--name', ORIGIN, '--seed-file', seed])).code).toBe(0);
    expect(readFileSync(a, 'utf8')).toBe(readFileSync(b, 'utf8'));
    writeFileSync(seed, 'c2hvcnQ=\n');
    const bad = await run(['--out', join(dir, 'seeded-c'), '--name', ORIGIN, '--seed-file', seed]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/32-byte seed in base64/);
  });

  it('when asked for help, then keygen and its options are explained', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/flowloom audit keygen --out FILE.*--force/);
    expect(help.out).toContain('0600');
  });
});

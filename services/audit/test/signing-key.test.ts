import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey } from '@flowloom/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryCheckpointSink } from '../src/adapters/checkpoint-sinks.js';
import { FileSigningKeyStore } from '../src/adapters/file-signing-key-store.js';
import { SqlLedgerStore } from '../src/adapters/sql-ledger-store.js';
import { AuditLedger } from '../src/app/ledger.js';
import type { TestDatabase } from './databases.js';
import { openTestDatabase, requestEvent, TEST_ORIGIN, tempDir } from './support.js';

describe('the checkpoint signing key', () => {
  let database: TestDatabase;
  let store: SqlLedgerStore;
  const dir = tempDir();
  const keyFile = join(dir.path, 'audit', 'signing-key');
  const open = (options: Partial<Parameters<typeof AuditLedger.open>[0]> = {}) =>
    AuditLedger.open({
      store,
      signingKeys: new FileSigningKeyStore(keyFile),
      origin: TEST_ORIGIN,
      ...options,
    });

  beforeAll(async () => {
    database = await openTestDatabase('pglite');
    store = await SqlLedgerStore.open(database.db);
  });
  afterAll(async () => {
    await database?.drop();
    dir.remove();
  });

  it('when the ledger starts the first time, then it generates a key readable by its owner only and publishes its verifier key', async () => {
    const ledger = await open();
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir.path, 'audit')).mode & 0o777).toBe(0o700);
    const [current] = await ledger.verifierKeys();
    expect(current).toMatch(new RegExp(`^${TEST_ORIGIN.replace(/\//g, '\\/')}\\+${ledger.keyId}\\+`));
    const again = await open();
    expect(again.keyId).toBe(ledger.keyId);
  });

  it('when the key file was left readable by others, then it is tightened on start', async () => {
    chmodSync(keyFile, 0o644);
    await open();
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
  });

  it('when the key file is not a key or belongs to another log, then start-up stops and says which file', async () => {
    const other = join(dir.path, 'other-key');
    writeFileSync(other, 'not a key\n');
    await expect(
      AuditLedger.open({ store, signingKeys: new FileSigningKeyStore(other), origin: TEST_ORIGIN }),
    ).rejects.toThrow(new RegExp(`${other}.*not a valid key`));
    writeFileSync(other, `${generateKey('someone.else/audit').signerKey}\n`);
    await expect(
      AuditLedger.open({ store, signingKeys: new FileSigningKeyStore(other), origin: TEST_ORIGIN }),
    ).rejects.toThrow(/for the log "someone.else\/audit"/);
  });

  it('when the configured origin differs from the stored one, then start-up stops with the fix', async () => {
    await expect(open({ origin: 'renamed.example/audit' })).rejects.toThrow(
      /origin of an existing log never changes/,
    );
  });

  it('when a reader without the key opens the ledger, then it signs nothing and serves the stored checkpoint and keys', async () => {
    const writer = await open();
    await writer.append([requestEvent(1)]);
    const signed = await writer.checkpoint();
    const reader = await AuditLedger.open({
      store,
      signingKeys: new FileSigningKeyStore(join(dir.path, 'absent')),
      createKey: false,
    });
    expect(reader.keyId).toBe('');
    expect((await reader.checkpoint()).id).toBe(signed.id);
    expect(await reader.verifierKeys()).toEqual(await writer.verifierKeys());
    await expect(reader.rotateKey('x')).rejects.toThrow(/not available/);
  });

  it('when checkpoints are copied to a folder, then each is one file and a different note for it is refused', async () => {
    const folder = join(dir.path, 'external');
    mkdirSync(folder);
    const sink = new DirectoryCheckpointSink(folder);
    await sink.publish({ treeSize: 5, keyId: 'abcd0123', note: 'note A\n' });
    await sink.publish({ treeSize: 5, keyId: 'abcd0123', note: 'note A\n' });
    await expect(sink.publish({ treeSize: 5, keyId: 'abcd0123', note: 'note B\n' })).rejects.toThrow(
      /refusing/,
    );
  });
});

describe('a new log next to an existing signing key', () => {
  it('when no origin is configured, then the new log takes the key’s name, so the key keeps working', async () => {
    const dir = tempDir();
    const keyFile = join(dir.path, 'signing-key');
    const first = await openTestDatabase('pglite');
    try {
      const a = await AuditLedger.open({
        store: await SqlLedgerStore.open(first.db),
        signingKeys: new FileSigningKeyStore(keyFile),
      });
      await first.drop();
      const second = await openTestDatabase('pglite');
      try {
        const b = await AuditLedger.open({
          store: await SqlLedgerStore.open(second.db),
          signingKeys: new FileSigningKeyStore(keyFile),
        });
        expect(b.origin).toBe(a.origin);
        expect(b.keyId).toBe(a.keyId);
      } finally {
        await second.drop();
      }
    } finally {
      dir.remove();
    }
  });
});

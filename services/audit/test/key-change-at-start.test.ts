import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AUDIT_KEY_ROTATED } from '@flowloom/contracts';
import { generateKey, openCheckpoint, parseVerifierKey } from '@flowloom/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSigningKeyStore } from '../src/adapters/file-signing-key-store.js';
import type { AuditLedger } from '../src/app/ledger.js';
import { startAudit } from '../src/main.js';
import type { TestDatabase } from './databases.js';
import {
  ENGINES,
  openTestDatabase,
  openTestLedger,
  requestEvent,
  standaloneAuditConfig,
  TEST_ORIGIN,
  type TestLedger,
  tempDir,
} from './support.js';

// A signing key that changes outside the API (a replaced key file or Kubernetes Secret, a lost key
// generated anew) is an audited key change: recorded at start, the old key still published.

interface KeyChange {
  actor: string;
  previousKeyId: string;
  keyId: string;
  verifierKey: string;
  how?: string;
}

async function keyChanges(ledger: AuditLedger): Promise<KeyChange[]> {
  const entries = await ledger.query({ type: AUDIT_KEY_ROTATED, limit: 100, order: 'asc' });
  return entries.map((e) => (JSON.parse(e.entry ?? '{}') as { data: KeyChange }).data);
}

for (const engine of ENGINES) {
  describe(`the signing key changed between starts (${engine})`, () => {
    let database: TestDatabase;
    let t: TestLedger;
    let firstKeyId: string;
    let firstNote: string;
    let replacedKeyId: string;

    beforeAll(async () => {
      database = await openTestDatabase(engine);
      t = await openTestLedger(database.db);
      await t.ledger.append([requestEvent(1), requestEvent(2)]);
      const first = await t.ledger.checkpoint();
      firstKeyId = first.keyId;
      firstNote = first.note;
      await t.ledger.close();
    });
    afterAll(async () => {
      await database?.drop();
      t?.cleanup();
    });

    it('when the key file was replaced, then the start records the change, signs with the new key and keeps the old key published', async () => {
      const replacement = generateKey(t.ledger.origin);
      writeFileSync(t.keyFile, `${replacement.signerKey}\n`);
      const ledger = await t.reopen();
      replacedKeyId = ledger.keyId;
      expect(replacedKeyId).not.toBe(firstKeyId);
      expect(await keyChanges(ledger)).toEqual([
        {
          actor: 'flowloom/audit (at start)',
          previousKeyId: firstKeyId,
          keyId: replacedKeyId,
          verifierKey: replacement.verifierKey,
          how: 'replaced-at-start',
        },
      ]);
      expect((await t.store.latestCheckpoint())?.keyId).toBe(replacedKeyId);
      const published = (await ledger.verifierKeys()).map(parseVerifierKey);
      expect(published[0]?.name).toBe(t.ledger.origin);
      expect(openCheckpoint(firstNote, published).checkpoint.size).toBe(2);
      await ledger.close();

      const again = await t.reopen();
      expect(again.keyId).toBe(replacedKeyId);
      expect(await keyChanges(again)).toHaveLength(1);
      await again.close();
    });

    it('when the key file was lost, then the start generates a key and records it as regenerated', async () => {
      rmSync(t.keyFile);
      const ledger = await t.reopen();
      expect(ledger.keyId).not.toBe(replacedKeyId);
      const changes = await keyChanges(ledger);
      expect(changes).toHaveLength(2);
      expect(changes[1]).toMatchObject({
        previousKeyId: replacedKeyId,
        keyId: ledger.keyId,
        how: 'regenerated-at-start',
      });
      const published = (await ledger.verifierKeys()).map(parseVerifierKey);
      expect(published).toHaveLength(3);
      expect(openCheckpoint(firstNote, published).checkpoint.size).toBe(2);
      await ledger.close();
    });

    it('when replicas roll over to a new key while an old one still signs, then the change is recorded once', async () => {
      const old = await t.reopen();
      const next = generateKey(t.ledger.origin);
      writeFileSync(t.keyFile, `${next.signerKey}\n`);
      const first = await t.reopen();
      // The replica still running with the old key signs once more before it is stopped.
      await old.append([requestEvent(3)]);
      await old.checkpoint();
      expect((await t.store.latestCheckpoint())?.keyId).toBe(old.keyId);
      const second = await t.reopen();
      expect(second.keyId).toBe(first.keyId);
      const changes = await keyChanges(second);
      expect(changes.filter((c) => c.keyId === first.keyId)).toHaveLength(1);
      for (const ledger of [old, first, second]) await ledger.close();
    });

    it('when replicas start together with the same new key, then the change is recorded once', async () => {
      const next = generateKey(t.ledger.origin);
      writeFileSync(t.keyFile, `${next.signerKey}\n`);
      const replicas = await Promise.all([t.reopen(), t.reopen(), t.reopen()]);
      const keyId = replicas[0]!.keyId;
      expect(new Set(replicas.map((r) => r.keyId))).toEqual(new Set([keyId]));
      for (const replica of replicas) await replica.close();
      // Read back through a ledger opened afterwards, which did not take part.
      const after = await t.reopen();
      expect((await keyChanges(after)).filter((c) => c.keyId === keyId)).toHaveLength(1);
      await after.close();
    });

    it('when the key is provided from outside, then a missing file stops start-up and the API refuses to rotate it', async () => {
      const missing = new FileSigningKeyStore(`${t.keyFile}.absent`, { provided: true });
      await expect(t.reopen({ signingKeys: missing })).rejects.toThrow(
        /does not exist.*FLOWLOOM_AUDIT_SIGNING_KEY_MODE=provided.*flowloom audit keygen --out FILE/,
      );
      const provided = await t.reopen({
        signingKeys: new FileSigningKeyStore(t.keyFile, { provided: true }),
      });
      const before = (await keyChanges(provided)).length;
      await expect(provided.rotateKey('admin')).rejects.toThrow(
        /cannot be rotated through the API.*flowloom audit keygen --out FILE.*recorded in the trail at start/,
      );
      expect(await keyChanges(provided)).toHaveLength(before);
      await provided.close();
    });

    it('when the key is rotated through the API, then the change says so', async () => {
      const ledger = await t.reopen();
      const rotated = await ledger.rotateKey('dana');
      const changes = await keyChanges(ledger);
      expect(changes.at(-1)).toEqual({ ...rotated, actor: 'dana', how: 'api' });
      await ledger.close();
    });
  });
}

describe('the standalone audit service with a provided key (FLOWLOOM_AUDIT_SIGNING_KEY_MODE=provided)', () => {
  const ADMIN = 'flk_audit-provided-key-admin-0123456789ab';
  const dir = tempDir();
  const keyFile = join(dir.path, 'secret', 'signing-key');
  const config = () =>
    standaloneAuditConfig(dir.path, ADMIN, {
      origin: TEST_ORIGIN,
      signingKeyMode: 'provided',
      signingKeyFile: keyFile,
    });
  let database: TestDatabase;

  beforeAll(async () => {
    database = await openTestDatabase('pglite');
  });
  afterAll(async () => {
    await database?.drop();
    dir.remove();
  });

  it('when the key file is missing, then it does not start, says what to do and writes no key', async () => {
    await expect(startAudit({ config: config(), db: database.db })).rejects.toThrow(
      new RegExp(`${keyFile} does not exist.*flowloom audit keygen --out FILE`),
    );
    expect(existsSync(keyFile)).toBe(false);
  });

  it('when the key is there, then it signs with it and refuses an API rotation with 409, pointing to the Secret', async () => {
    const key = generateKey(TEST_ORIGIN);
    mkdirSync(dirname(keyFile), { recursive: true });
    writeFileSync(keyFile, `${key.signerKey}\n`, { mode: 0o600 });
    const audit = await startAudit({ config: config(), db: database.db });
    try {
      expect(audit.service.ledger.keyId).toBe(key.verifierKey.split('+')[1]);
      const response = await fetch(`${audit.httpUrl}/api/v1/audit/keys/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(response.status).toBe(409);
      expect(await response.text()).toMatch(
        /cannot be rotated through the API.*replace the key in its Secret/,
      );
      expect(readFileSync(keyFile, 'utf8')).toBe(`${key.signerKey}\n`);
    } finally {
      await audit.close();
    }
  });
});

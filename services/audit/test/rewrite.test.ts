import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CloudEvent } from '@flowloom/contracts';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryCheckpointSink } from '../src/adapters/checkpoint-sinks.js';
import { FileSigningKeyStore } from '../src/adapters/file-signing-key-store.js';
import { SqlLedgerStore } from '../src/adapters/sql-ledger-store.js';
import { AuditLedger } from '../src/app/ledger.js';
import { LocalAuditSource } from '../src/app/local-source.js';
import { verifyLog } from '../src/app/verify-log.js';
import type { TestDatabase } from './databases.js';
import { ENGINES, openTestDatabase, requestEvent, TEST_ORIGIN, tempDir } from './support.js';

// Whoever administers the database can rebuild the whole ledger from scratch and, holding the
// signing key, re-sign every checkpoint: the rebuilt log is consistent with itself and verifies on
// its own. Only checkpoints kept outside the database (audit.checkpointDir, `audit verify
// --checkpoints DIR`) reveal it.

const SIZE = 40;

/** The files of audit.checkpointDir, as `flowloom audit verify --checkpoints DIR` reads them. */
function externalCheckpoints(dir: string): Array<{ name: string; note: string }> {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.checkpoint'))
    .sort()
    .map((name) => ({ name, note: readFileSync(join(dir, name), 'utf8') }));
}

/** Appends `events` with a signed checkpoint at each of `sizes`. */
async function build(ledger: AuditLedger, events: readonly CloudEvent[], sizes: number[]): Promise<void> {
  for (const end of sizes) {
    await ledger.append(events.slice(ledger.size, end));
    await ledger.checkpoint();
  }
}

for (const engine of ENGINES) {
  describe(`a whole-database rewrite on ${engine}, caught by external checkpoints`, () => {
    const open: Array<{ ledger?: AuditLedger; database: TestDatabase }> = [];
    const dirs: Array<{ remove(): void }> = [];
    afterEach(async () => {
      for (const o of open.splice(0)) {
        await o.ledger?.close().catch(() => undefined);
        await o.database.drop().catch(() => undefined);
      }
      for (const d of dirs.splice(0)) d.remove();
    });

    /**
     * The original ledger (checkpoints at 10, 20 and 40, each copied to the external folder), then
     * its database dropped and a new one built by `rebuild` with the same signing key.
     */
    async function rewritten(
      rebuild: (ledger: AuditLedger, original: readonly CloudEvent[]) => Promise<void>,
    ): Promise<{ source: LocalAuditSource; external: string }> {
      const dir = tempDir();
      dirs.push(dir);
      const keyFile = join(dir.path, 'signing-key');
      const external = join(dir.path, 'external');
      const events = Array.from({ length: SIZE }, (_, i) => requestEvent(i));

      const first = { database: await openTestDatabase(engine) } as {
        ledger?: AuditLedger;
        database: TestDatabase;
      };
      first.ledger = await AuditLedger.open({
        store: await SqlLedgerStore.open(first.database.db),
        signingKeys: new FileSigningKeyStore(keyFile),
        origin: TEST_ORIGIN,
        sinks: [new DirectoryCheckpointSink(external)],
      });
      await build(first.ledger, events, [10, 20, SIZE]);
      expect(externalCheckpoints(external)).toHaveLength(3);
      await first.ledger.close();
      await first.database.drop();

      // The rewrite: a fresh database, the same key and origin, no access to the external folder.
      const second = { database: await openTestDatabase(engine) } as {
        ledger?: AuditLedger;
        database: TestDatabase;
      };
      open.push(second);
      second.ledger = await AuditLedger.open({
        store: await SqlLedgerStore.open(second.database.db),
        signingKeys: new FileSigningKeyStore(keyFile),
        origin: TEST_ORIGIN,
      });
      await rebuild(second.ledger, events);
      const source = new LocalAuditSource(second.ledger, engine);
      // On its own the rebuilt log is flawless: its checkpoints are validly signed and match it.
      const alone = await verifyLog(source);
      expect(alone.problems).toEqual([]);
      expect(alone.ok).toBe(true);
      return { source, external };
    }

    it('when the ledger is rebuilt with one entry changed and re-signed with the same key, then verify --checkpoints fails: rewritten', async () => {
      const { source, external } = await rewritten(async (ledger, original) => {
        const forged = original.map((e, i) => (i === 13 ? requestEvent(999) : e));
        await build(ledger, forged, [10, 20, SIZE]);
      });
      const report = await verifyLog(source, { externalCheckpoints: externalCheckpoints(external) });
      expect(report.ok).toBe(false);
      expect(report.summary).toMatch(/^FAILED: /);
      const external20 = report.problems.find(
        (p) => p.code === 'external-checkpoint' && /external checkpoint 0+20-/.test(p.message),
      );
      expect(external20?.message, JSON.stringify(report.problems)).toMatch(
        /disagree on the root: the log was forked or rewritten/,
      );
      // The checkpoint at 10 still agrees: the damage lies between 10 and 20.
      expect(report.problems.some((p) => /0+10-/.test(p.message))).toBe(false);
    }, 60_000);

    it('when the ledger is rebuilt with its last entries left out, then verify --checkpoints fails: truncated', async () => {
      const { source, external } = await rewritten(async (ledger, original) => {
        await build(ledger, original, [10, 20, 30]);
      });
      const report = await verifyLog(source, { externalCheckpoints: externalCheckpoints(external) });
      expect(report.ok).toBe(false);
      expect(report.summary).toMatch(/^FAILED: /);
      expect(report.firstBad).toMatchObject({ index: 30, kind: 'truncated', exact: true });
      expect(report.problems).toContainEqual({
        code: 'node-store',
        message: expect.stringMatching(
          /external checkpoint 0+40-\S+ covers 40 entries but the node store holds only 30: the log was truncated/,
        ),
      });
    }, 60_000);
  });
}

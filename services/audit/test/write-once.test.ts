import { openPostgres } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedgerConnection } from '../src/adapters/ledger-writer-db.js';
import { LEDGER_TABLES, ledgerWriterRoleSql } from '../src/adapters/migrations.js';
import { SqlLedgerStore } from '../src/adapters/sql-ledger-store.js';
import { LocalAuditSource } from '../src/app/local-source.js';
import { verifyLog } from '../src/app/verify-log.js';
import type { TestDatabase } from './databases.js';
import {
  COMPLETED,
  ENGINES,
  openTestDatabase,
  openTestLedger,
  requestEvent,
  type TestLedger,
} from './support.js';

// Write-once is enforced by the database itself: triggers refuse UPDATE, DELETE and TRUNCATE on every
// ledger table, whoever asks; on PostgreSQL the service's role also lacks the privileges.

const UPDATES: Record<(typeof LEDGER_TABLES)[number], string> = {
  audit_meta: 'update audit_meta set value = value',
  audit_entries: "update audit_entries set entry = replace(entry, 'req-', 'REQ-') where idx = 1",
  audit_node_tiles: 'update audit_node_tiles set hashes = hashes',
  audit_checkpoints: 'update audit_checkpoints set note = note',
  audit_keys: 'update audit_keys set key_id = key_id',
  audit_prunings: 'update audit_prunings set pruned = pruned',
};

const OLD = new Date('2001-01-01T00:00:00Z');

for (const engine of ENGINES) {
  describe(`write-once ledger tables on ${engine}`, () => {
    let database: TestDatabase;
    let t: TestLedger;

    beforeAll(async () => {
      database = await openTestDatabase(engine);
      t = await openTestLedger(database.db);
      await t.ledger.append([
        ...Array.from({ length: 6 }, (_, i) => requestEvent(i)),
        ...Array.from({ length: 3 }, (_, i) => requestEvent(100 + i, { at: OLD, failed: true })),
      ]);
      await t.ledger.checkpoint();
      // One audited pruning so audit_prunings has a row to protect.
      expect(
        await t.ledger.applyRetention([{ pattern: 'dev.flowloom.gateway.request.failed.v1', days: 30 }]),
      ).toEqual([expect.objectContaining({ type: 'dev.flowloom.gateway.request.failed.v1', pruned: 3 })]);
    });
    afterAll(async () => {
      await t?.ledger.close();
      t?.cleanup();
      await database?.drop();
    });

    for (const table of LEDGER_TABLES) {
      it(`when ${table} is updated, deleted from or truncated, then the database refuses`, async () => {
        const { db } = database;
        await expect(db.query(UPDATES[table])).rejects.toThrow(/write-once/);
        await expect(db.query(`delete from ${table}`)).rejects.toThrow(/write-once/);
        await expect(db.query(`truncate ${table}`)).rejects.toThrow(/write-once/);
        const { rows } = await db.query<{ n: unknown }>(`select count(*) as n from ${table}`);
        expect(Number(rows[0]?.n)).toBeGreaterThan(0);
      });
    }

    it('when someone sets the prune flag by hand, then still only content can be blanked, never a hash, index or type', async () => {
      const { db } = database;
      const withFlag = (sql: string) =>
        db.transaction(async (tx) => {
          await tx.query("select set_config('flowloom.audit_prune', 'on', true)");
          await tx.query(sql);
        });
      await expect(
        withFlag("update audit_entries set leaf_hash = decode(repeat('00', 32), 'hex') where idx = 2"),
      ).rejects.toThrow(/write-once/);
      await expect(
        withFlag(
          "update audit_entries set entry = null, pruned = true, event_type = 'x', subject = null, actor = null, key_id = null, project = null, job = null where idx = 2",
        ),
      ).rejects.toThrow(/write-once/);
      await expect(withFlag('delete from audit_entries where idx = 2')).rejects.toThrow(/write-once/);
      expect((await t.store.entry(2))?.pruned).toBe(false);
    });

    it('when retention pruned entries, then their hashes remain, the pruning is recorded and the log still verifies', async () => {
      const pruned = await t.ledger.query({
        limit: 10,
        order: 'asc',
        type: 'dev.flowloom.gateway.request.failed.v1',
      });
      expect(pruned).toHaveLength(3);
      for (const view of pruned) {
        expect(view).toMatchObject({ pruned: true, entry: null, actor: null, project: null });
        expect(view.leafHash).toHaveLength(32);
      }
      const recorded = await t.ledger.query({
        limit: 5,
        order: 'desc',
        type: 'dev.flowloom.audit.retention.applied.v1',
      });
      expect(recorded).toHaveLength(1);
      const { rows } = await database.db.query<{ pruned: unknown }>('select pruned from audit_prunings');
      expect(rows.map((r) => Number(r.pruned))).toEqual([3]);
      const report = await verifyLog(new LocalAuditSource(t.ledger, engine));
      expect(report.problems).toEqual([]);
      expect(report.prunedCount).toBe(3);
      // Completed requests have no rule: untouched.
      expect(
        (await t.ledger.query({ limit: 10, order: 'asc', type: COMPLETED })).every((v) => !v.pruned),
      ).toBe(true);
    });
  });
}

describe('the insert/select-only role on PostgreSQL', () => {
  const role = 'flowloom_audit_writer_test';
  let database: TestDatabase;

  beforeAll(async () => {
    database = await openTestDatabase('postgres');
    await SqlLedgerStore.open(database.db);
    await database.db.exec(ledgerWriterRoleSql(role));
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('when the service runs as the role, then it appends, checkpoints and prunes, but cannot update, delete or truncate', async () => {
    const url = new URL(database.url ?? '');
    url.searchParams.set('options', `-csearch_path=${database.schema} -crole=${role}`);
    const asWriter = await openPostgres(url.toString(), { max: 2 });
    try {
      const { rows } = await asWriter.query<{ role: string }>('select current_user as role');
      expect(rows[0]?.role).toBe(role);
      const t = await openTestLedger(asWriter);
      await t.ledger.append([requestEvent(1), requestEvent(2, { at: OLD })]);
      await t.ledger.checkpoint();
      expect(await t.ledger.applyRetention([{ pattern: COMPLETED, days: 1 }])).toEqual([
        expect.objectContaining({ pruned: 1 }),
      ]);
      for (const table of LEDGER_TABLES) {
        // The session flag does not help: the role lacks the privilege itself.
        await expect(
          asWriter.transaction(async (tx) => {
            await tx.query("select set_config('flowloom.audit_prune', 'on', true)");
            await tx.query(UPDATES[table]);
          }),
        ).rejects.toThrow(/permission denied/);
        await expect(asWriter.query(`delete from ${table}`)).rejects.toThrow(/permission denied/);
        await expect(asWriter.query(`truncate ${table}`)).rejects.toThrow(/permission denied/);
      }
      await expect(asWriter.query('drop table audit_entries')).rejects.toThrow(
        /must be owner|permission denied/,
      );
      expect((await verifyLog(new LocalAuditSource(t.ledger, 'role'))).ok).toBe(true);
      await t.ledger.close();
      t.cleanup();
    } finally {
      await asWriter.close();
    }
  });

  it('when the role is from before the index watermark, then opening the ledger grants it that table too', async () => {
    await database.db.exec(`revoke update on audit_index_progress from ${role}`);
    const canUpdate = async (): Promise<boolean> => {
      const { rows } = await database.db.query<{ ok: boolean }>(
        "select has_table_privilege($1, 'audit_index_progress', 'UPDATE') as ok",
        [role],
      );
      return rows[0]?.ok === true;
    };
    expect(await canUpdate()).toBe(false);
    const url = new URL(database.url ?? '');
    url.searchParams.set('options', `-csearch_path=${database.schema}`);
    const connection = await openLedgerConnection(database.db, { databaseUrl: url.toString(), role });
    try {
      expect(await canUpdate()).toBe(true);
      const t = await openTestLedger(connection.db);
      await t.ledger.append([requestEvent(1), requestEvent(2)]);
      await t.ledger.catchUpIndex();
      const { rows } = await connection.db.query<{ upto: unknown }>('select upto from audit_index_progress');
      expect(Number(rows[0]?.upto)).toBe(t.ledger.size);
      await t.ledger.close();
      t.cleanup();
    } finally {
      await connection.close();
    }
  });
});

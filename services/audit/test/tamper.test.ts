import type { Db, Queryable } from '@flowloom/store';
import { afterEach, describe, expect, it } from 'vitest';
import { createVerifyWorker } from '../src/adapters/verify-worker.js';
import { LocalAuditSource } from '../src/app/local-source.js';
import { type LogReport, verifyLog } from '../src/app/verify-log.js';
import type { TestDatabase } from './databases.js';
import { ENGINES, openTestDatabase, openTestLedger, requestEvent, type TestLedger } from './support.js';

// Someone with superuser rights bypasses the write-once triggers (session_replication_role =
// replica) and edits, deletes, inserts or reorders rows. Verification from storage must notice and
// name the first bad entry. Checkpoints exist at sizes 10, 20 and 40.

const SIZE = 40;

/**
 * Verifies on this thread and with the worker thread (the CLI's way); both must report the same.
 */
async function verifyBothWays(source: LocalAuditSource): Promise<LogReport> {
  const here = await verifyLog(source, { pageSize: 8 });
  const worker = createVerifyWorker();
  try {
    const offloaded = await verifyLog(source, {
      pageSize: 8,
      hashLines: (lines) => worker.hashLines(lines),
      treeChecker: worker.treeChecker,
    });
    expect(offloaded).toEqual(here);
  } finally {
    await worker.close();
  }
  return here;
}

async function seeded(engine: (typeof ENGINES)[number]): Promise<{ database: TestDatabase; t: TestLedger }> {
  const database = await openTestDatabase(engine);
  const t = await openTestLedger(database.db);
  const events = Array.from({ length: SIZE }, (_, i) => requestEvent(i));
  for (const end of [10, 20, SIZE]) {
    await t.ledger.append(events.slice(t.ledger.size, end));
    await t.ledger.checkpoint();
  }
  return { database, t };
}

/** Runs statements as a superuser with triggers off, the way an insider would. */
async function tamper(database: TestDatabase, statements: string[]): Promise<void> {
  const db: Db = await database.superuser();
  await db.transaction(async (tx: Queryable) => {
    await tx.query('set local session_replication_role = replica');
    for (const sql of statements) await tx.query(sql);
  });
}

const cases: Array<{ name: string; statements: string[]; expect: Partial<LogReport['firstBad']> }> = [
  {
    name: 'an entry is edited',
    statements: ["update audit_entries set entry = replace(entry, 'req-13', 'req-99') where idx = 13"],
    expect: { index: 13, kind: 'changed', exact: true },
  },
  {
    name: 'an entry and its leaf_hash column are edited together',
    statements: [
      "update audit_entries set entry = replace(entry, 'req-13', 'req-99') where idx = 13",
      "update audit_entries set leaf_hash = sha256(convert_to(E'\\\\x00', 'UTF8') || convert_to(entry, 'UTF8')) where idx = 13",
    ],
    expect: { index: 13, kind: 'changed', exact: true },
  },
  {
    name: 'an entry is deleted',
    statements: ['delete from audit_entries where idx = 21'],
    expect: { index: 21, kind: 'deleted', exact: true },
  },
  {
    name: 'an entry is inserted (later rows renumbered)',
    statements: [
      'update audit_entries set idx = idx + 1000 where idx >= 30',
      'update audit_entries set idx = idx - 999 where idx >= 1000',
      `insert into audit_entries (idx, event_id, leaf_hash, event_time, event_type, source, entry)
         select 30, 'forged', leaf_hash, event_time, event_type, source, replace(entry, 'req-29', 'req-forged')
           from audit_entries where idx = 29`,
    ],
    expect: { index: 30, kind: 'inserted', exact: true },
  },
  {
    name: 'two entries are swapped',
    statements: [
      'update audit_entries set idx = 1000 where idx = 5',
      'update audit_entries set idx = 5 where idx = 6',
      'update audit_entries set idx = 6 where idx = 1000',
    ],
    expect: { index: 5, kind: 'reordered', exact: true },
  },
  {
    name: 'the last entries are deleted',
    statements: ['delete from audit_entries where idx >= 35'],
    expect: { index: 35, kind: 'truncated', exact: true },
  },
  {
    name: 'an entry, its hash and the node store are all altered',
    statements: [
      "update audit_entries set entry = replace(entry, 'req-13', 'req-99') where idx = 13",
      "update audit_entries set leaf_hash = sha256(convert_to(E'\\\\x00', 'UTF8') || convert_to(entry, 'UTF8')) where idx = 13",
      "update audit_node_tiles set hashes = overlay(hashes placing decode(repeat('ab', 32), 'hex') from 1 for 32) where start_size = 10",
    ],
    // Only the signed checkpoints are left to go by: between the one at 10 and the one at 20.
    expect: { index: 10, kind: 'unknown', exact: false, before: 20 },
  },
];

for (const engine of ENGINES) {
  describe(`tampering with the ledger on ${engine}, triggers bypassed`, () => {
    let current: { database: TestDatabase; t: TestLedger } | undefined;
    afterEach(async () => {
      await current?.t.ledger.close().catch(() => undefined);
      current?.t.cleanup();
      await current?.database.drop();
      current = undefined;
    });

    it('when nothing was touched, then verification passes', async () => {
      current = await seeded(engine);
      const report = await verifyBothWays(new LocalAuditSource(current.t.ledger, engine));
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ ok: true, entryCount: SIZE, checkpointsVerified: 3 });
    });

    for (const c of cases) {
      it(`when ${c.name}, then verification fails and names the first bad entry`, async () => {
        current = await seeded(engine);
        await tamper(current.database, c.statements);
        const report = await verifyBothWays(new LocalAuditSource(current.t.ledger, engine));
        expect(report.ok).toBe(false);
        expect(report.firstBad).toMatchObject(c.expect as Record<string, unknown>);
        expect(report.summary).toMatch(/^FAILED: /);
      });
    }

    it('when an entry is replaced by text that is not JSON, then search still indexes every entry, that one as plain text', async () => {
      current = await seeded(engine);
      await tamper(current.database, [
        "update audit_entries set entry = 'forged words, not json' where idx = 13",
      ]);
      const { ledger } = current.t;
      const found = (text: string) =>
        ledger.query({ limit: 100, order: 'asc', text }).then((rows) => rows.map((r) => r.index));
      expect(await found('forged words')).toEqual([13]);
      expect(await found('openai')).toEqual(
        Array.from({ length: SIZE }, (_, i) => i).filter((i) => i !== 13),
      );
      expect(await current.t.store.indexedUpTo()).toBe(SIZE);
    });

    it('when a checkpoint row is altered, then its signature fails', async () => {
      current = await seeded(engine);
      await tamper(current.database, [
        "update audit_checkpoints set note = replace(note, E'\\n10\\n', E'\\n11\\n') where tree_size = 10",
      ]);
      const report = await verifyLog(new LocalAuditSource(current.t.ledger, engine));
      expect(report.ok).toBe(false);
      expect(
        report.problems.some((p) => p.code === 'checkpoint' && /signature|altered/.test(p.message)),
      ).toBe(true);
    });
  });
}

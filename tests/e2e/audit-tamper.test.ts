import { openTestLedger, openTestPostgres, requestEvent } from '@flowloom/audit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from './cli-support.js';

// An insider with superuser rights on the real PostgreSQL bypasses the write-once triggers and
// edits, deletes, inserts or reorders ledger rows. `flowloom audit verify --database-url`, run as a
// user runs it, must fail and name the first bad entry. Checkpoints were signed at 10, 20 and 40.

const SIZE = 40;
type Seeded = Awaited<ReturnType<typeof openTestPostgres>>;

async function seeded(): Promise<Seeded> {
  const database = await openTestPostgres();
  const t = await openTestLedger(database.db);
  const events = Array.from({ length: SIZE }, (_, i) => requestEvent(i));
  for (const end of [10, 20, SIZE]) {
    await t.ledger.append(events.slice(t.ledger.size, end));
    await t.ledger.checkpoint();
  }
  await t.ledger.close();
  t.cleanup();
  return database;
}

async function tamper(database: Seeded, statements: string[]): Promise<void> {
  const db = await database.superuser();
  await db.transaction(async (tx) => {
    await tx.query('set local session_replication_role = replica');
    for (const sql of statements) await tx.query(sql);
  });
}

const verify = (database: Seeded) =>
  runCli(['audit', 'verify', '--database-url', database.url ?? ''], cleanEnv({}), 90_000);

const cases: Array<{ name: string; statements: string[]; expected: RegExp }> = [
  {
    name: 'an entry is edited',
    statements: ["update audit_entries set entry = replace(entry, 'req-13', 'req-1300') where idx = 13"],
    expected: /First bad entry: 13 \(changed\)/,
  },
  {
    name: 'an entry is deleted',
    statements: ['delete from audit_entries where idx = 21'],
    expected: /First bad entry: 21 \(deleted\)/,
  },
  {
    name: 'an entry is inserted',
    statements: [
      'update audit_entries set idx = idx + 1000 where idx >= 30',
      'update audit_entries set idx = idx - 999 where idx >= 1000',
      `insert into audit_entries (idx, event_id, leaf_hash, event_time, event_type, source, entry)
         select 30, 'forged', leaf_hash, event_time, event_type, source, replace(entry, 'req-29', 'req-forged')
           from audit_entries where idx = 29`,
    ],
    expected: /First bad entry: 30 \(inserted\)/,
  },
  {
    name: 'two entries are reordered',
    statements: [
      'update audit_entries set idx = 1000 where idx = 5',
      'update audit_entries set idx = 5 where idx = 6',
      'update audit_entries set idx = 6 where idx = 1000',
    ],
    expected: /First bad entry: 5 \(reordered\)/,
  },
];

describe('flowloom audit verify --database-url against a tampered PostgreSQL', () => {
  let database: Seeded | undefined;
  afterEach(async () => {
    await database?.drop();
    database = undefined;
  });

  it('when nothing was touched, then it passes', async () => {
    database = await seeded();
    const result = await verify(database);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^OK: 40 entries .* 3 signed checkpoint/);
  }, 120_000);

  for (const c of cases) {
    it(`when ${c.name} as a superuser bypassing the triggers, then it fails naming the index`, async () => {
      database = await seeded();
      await tamper(database, c.statements);
      const result = await verify(database);
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stdout).toMatch(/^FAILED: /);
      expect(result.stdout).toMatch(c.expected);
    }, 120_000);
  }
});

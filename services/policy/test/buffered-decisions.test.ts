import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DecisionRecord, uuidv7 } from '@flowloom/contracts';
import { type Db, migrate, openPglite } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BufferedDecisionStore } from '../src/adapters/buffered-decision-store.js';
import { policyMigrations } from '../src/adapters/migrations.js';
import { SqlDecisionStore } from '../src/adapters/sql-decision-store.js';

// The embedded decisions store on a real PGlite: buffered writes, read-your-writes, recovery.

let db: Db;
let dir: string;
beforeAll(async () => {
  db = await openPglite();
  await migrate(db, policyMigrations);
  dir = mkdtempSync(join(tmpdir(), 'flowloom-decisions-'));
});
afterAll(async () => {
  await db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const record = (job: string): DecisionRecord => ({
  decisionId: uuidv7(),
  requestId: uuidv7(),
  at: new Date().toISOString(),
  job,
  verdict: 'allow',
  actions: [],
  intendedVerdict: 'allow',
  intendedActions: [],
  enforced: true,
  evaluations: [],
  evaluationMicros: 3,
  // Records travel to the database newline-joined: a newline inside one must not split it.
  message: 'first line\nsecond line',
  input: { request: { job } },
});

describe('buffered decisions (embedded)', () => {
  it('when decisions are taken, then they are readable at once and in the database after a flush', async () => {
    const sql = new SqlDecisionStore(db);
    const store = await BufferedDecisionStore.open(sql, join(dir, 'a'), (e) => {
      throw e;
    });
    const records = Array.from({ length: 300 }, () => record('batch-job'));
    for (const r of records) await store.save(r);
    await store.save(records[0]!); // a redelivery
    expect(await store.get(records[7]!.decisionId)).toEqual(records[7]);
    expect(await sql.get(records[7]!.decisionId)).toBeUndefined();
    expect(await store.list({ job: 'batch-job', limit: 1000 })).toHaveLength(300);
    expect(await sql.get(records[7]!.decisionId)).toEqual(records[7]);
    expect((await store.inputsSince(new Date(0), 1000)).records.length).toBeGreaterThanOrEqual(300);
    await store.close();
    expect(readdirSync(join(dir, 'a'))).toEqual([]);
  });

  it('when the process dies before a flush, then the next start writes what was acknowledged', async () => {
    const sql = new SqlDecisionStore(db);
    // The database write of the first process never completes: it dies in the middle of it.
    const dying = Object.assign(Object.create(sql) as SqlDecisionStore, {
      saveMany: () => new Promise<void>(() => {}),
    });
    const crashed = await BufferedDecisionStore.open(dying, join(dir, 'b'), () => {});
    const lost = record('crash-job');
    await crashed.save(lost);
    // Acknowledged means in the file: the bus lets go of the event once save resolves.
    const files = readdirSync(join(dir, 'b')).map((f) => readFileSync(join(dir, 'b', f), 'utf8'));
    expect(files.join('')).toContain(lost.decisionId);
    await new Promise((r) => setTimeout(r, 100));
    expect(await sql.get(lost.decisionId)).toBeUndefined();
    expect(readdirSync(join(dir, 'b')).length).toBeGreaterThan(0);
    const restarted = await BufferedDecisionStore.open(sql, join(dir, 'b'), () => {});
    expect(await sql.get(lost.decisionId)).toEqual(lost);
    await restarted.close();
  });
});

import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessBus } from '@flowloom/bus';
import {
  createEvent,
  type DecisionRecord,
  type Intervention,
  POLICY_DECISION,
  POLICY_INTERVENTION,
  uuidv7,
} from '@flowloom/contracts';
import { type Db, migrate, openPglite } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeLeftoverDecisions } from '../src/adapters/decision-journal-leftovers.js';
import { policyMigrations } from '../src/adapters/migrations.js';
import { SqlDecisionStore } from '../src/adapters/sql-decision-store.js';
import { SqlPolicyRepository } from '../src/adapters/sql-policy-repository.js';
import { DecisionsService } from '../src/app/decisions.js';
import { consumeDecisions } from '../src/consumers/decisions.js';

// The decisions consumer on a real PGlite: a delivery is written in one statement and acknowledged
// only once written; what an earlier version's journal folder held is written at start.

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

const intervention = (job: string): Intervention => ({
  decisionId: uuidv7(),
  requestId: uuidv7(),
  job,
  action: 'stop_job',
  actions: ['stop_job'],
  enforced: true,
  mode: 'enforce',
  policy: 'guard',
  version: 'v1',
  rule: 'loop',
  reason: 'the same prompt 5 times',
});

/** The real store, counting its multi-row writes. */
class CountingStore extends SqlDecisionStore {
  writes = 0;
  failNext = false;
  override async saveMany(records: readonly DecisionRecord[]): Promise<void> {
    this.writes++;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('database unavailable');
    }
    await super.saveMany(records);
  }
}

async function consumer() {
  const store = new CountingStore(db);
  const bus = new InProcessBus();
  const skipped: string[] = [];
  let stored = 0;
  await consumeDecisions(
    bus,
    new DecisionsService(store, new SqlPolicyRepository(db)),
    (r) => skipped.push(r),
    {
      stored: (count) => {
        stored += count;
      },
    },
  );
  return { store, bus, skipped, stored: () => stored };
}

describe('decisions consumer', () => {
  it('when a batch of decision events is delivered, then it is written in one statement, malformed ones are reported and a redelivery is stored once', async () => {
    const { store, bus, skipped, stored } = await consumer();
    const records = Array.from({ length: 300 }, () => record('batch-job'));
    const events = [
      ...records.map((r) => createEvent(POLICY_DECISION, 'flowloom/gateway', r, 'batch-job')),
      createEvent(POLICY_INTERVENTION, 'flowloom/gateway', intervention('batch-job'), 'batch-job'),
      createEvent(POLICY_DECISION, 'flowloom/gateway', { decisionId: 'no-request' }, 'batch-job'),
    ];
    await bus.publish(events);
    expect(store.writes).toBe(1);
    expect(stored()).toBe(301);
    expect(skipped).toEqual([`decision event ${events[301]!.id} is malformed`]);
    // Readable as soon as the delivery is acknowledged.
    expect(await store.get(records[7]!.decisionId)).toEqual(records[7]);
    expect(await store.interventions('batch-job', undefined, 10)).toHaveLength(1);

    await bus.publish(events);
    expect(store.writes).toBe(2);
    expect(await store.list({ job: 'batch-job', limit: 1000 })).toHaveLength(300);
    expect(await store.interventions('batch-job', undefined, 10)).toHaveLength(1);
  });

  it('when the database write fails, then the delivery is not acknowledged, and the redelivery stores it', async () => {
    const { store, bus } = await consumer();
    const decision = record('failing-job');
    const event = createEvent(POLICY_DECISION, 'flowloom/gateway', decision, 'failing-job');
    store.failNext = true;
    await expect(bus.publish([event])).rejects.toThrow('database unavailable');
    expect(await store.get(decision.decisionId)).toBeUndefined();
    await bus.publish([event]);
    expect(await store.get(decision.decisionId)).toEqual(decision);
  });
});

describe('decisions left in the journal folder of an earlier version', () => {
  it('when segments are left (one with a torn last line), then they are written to the store and the folder is removed', async () => {
    const folder = join(dir, 'policy-decisions');
    mkdirSync(folder);
    const first = record('journal-job');
    const second = record('journal-job');
    const stopped = intervention('journal-job');
    writeFileSync(
      join(folder, '001796620449570-000001.jsonl'),
      `${JSON.stringify({ kind: 'd', record: first })}\n${JSON.stringify({ kind: 'i', eventId: uuidv7(), at: new Date().toISOString(), intervention: stopped })}\n`,
    );
    writeFileSync(
      join(folder, '001796620449571-000002.jsonl'),
      `${JSON.stringify({ kind: 'd', record: second })}\n{"kind":"d","record":{"decisionId":"torn`,
    );
    const store = new SqlDecisionStore(db);
    expect(await writeLeftoverDecisions(store, folder)).toBe(3);
    expect(await store.get(first.decisionId)).toEqual(first);
    expect(await store.get(second.decisionId)).toEqual(second);
    expect(await store.interventions('journal-job', undefined, 10)).toMatchObject([
      { decisionId: stopped.decisionId },
    ]);
    expect(readdirSync(dir)).not.toContain('policy-decisions');
    // Nothing left: a second start writes nothing.
    expect(await writeLeftoverDecisions(store, folder)).toBe(0);
  });
});

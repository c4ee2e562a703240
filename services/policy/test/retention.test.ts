import { createEvent, POLICY_DECISION, uuidv7 } from '@flowloom/contracts';
import type { Db } from '@flowloom/store';
import { describe, expect, it } from 'vitest';
import { SqlOperationalRetention } from '../src/adapters/sql-operational-retention.js';
import { policyServiceOn } from './support.js';
import { allowDecision, completedEvent } from './traffic.js';

// The policy service's working copies (decisions, interventions, replay traffic) are pruned after
// policy.retentionDays; the audit ledger, not these tables, is the lasting record.

const DAY = 86_400_000;

async function insertDecisionRow(db: Db, id: string, atMs: number): Promise<void> {
  await db.query(
    `insert into policy_decisions (id, request_id, at, verdict, intended_verdict, enforced, record)
     values ($1, $2, $3, 'allow', 'allow', true, '{}')`,
    [id, `rq-${id}`, new Date(atMs).toISOString()],
  );
}

async function insertInterventionRow(db: Db, id: string, atMs: number): Promise<void> {
  await db.query(
    `insert into policy_interventions (id, decision_id, job, at, record) values ($1, $2, 'nightly', $3, '{}')`,
    [id, `d-${id}`, new Date(atMs).toISOString()],
  );
}

async function ids(db: Db, table: string, key: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(`select ${key} as id from ${table} order by ${key}`);
  return rows.map((r) => r.id);
}

describe.each(['postgres', 'pglite'] as const)('policy retention (%s)', (engine) => {
  const started = policyServiceOn(engine, { policy: { retentionDays: 1, retentionIntervalMs: 1_000 } });

  it('when rows are older than the cutoff, then they are deleted a slice at a time and newer rows stay', async () => {
    const retention = new SqlOperationalRetention(started.db, 2);
    const now = Date.now();
    for (const n of [1, 2, 3, 4, 5]) await insertDecisionRow(started.db, `slice-old-${n}`, now - 40 * DAY);
    await insertDecisionRow(started.db, 'slice-new', now - 10 * DAY);
    await insertInterventionRow(started.db, 'slice-old', now - 40 * DAY);
    await insertInterventionRow(started.db, 'slice-new', now - 10 * DAY);

    const pruned = await retention.pruneBefore(new Date(now - 30 * DAY));
    expect(pruned).toEqual({ decisions: 5, interventions: 1, requests: 0 });
    expect((await ids(started.db, 'policy_decisions', 'id')).filter((id) => id.startsWith('slice-'))).toEqual(
      ['slice-new'],
    );
    expect(
      (await ids(started.db, 'policy_interventions', 'id')).filter((id) => id.startsWith('slice-')),
    ).toEqual(['slice-new']);
    expect(await retention.pruneBefore(new Date(now - 30 * DAY))).toEqual({
      decisions: 0,
      interventions: 0,
      requests: 0,
    });
  });

  it('when the service runs with retentionDays 1, then decisions and request traffic older than a day are removed and recent ones kept', async () => {
    const now = Date.now();
    const oldRequest = uuidv7(now - 3 * DAY);
    const newRequest = uuidv7();
    const oldDecision = allowDecision(oldRequest, 'm', now - 3 * DAY);
    const newDecision = allowDecision(newRequest, 'm', now - 60_000);
    await started.t.bus.publish([
      createEvent(POLICY_DECISION, 'flowloom/gateway', oldDecision, 'job/nightly', now - 3 * DAY),
      createEvent(POLICY_DECISION, 'flowloom/gateway', newDecision, 'job/nightly'),
      completedEvent(oldRequest, 'm', now - 3 * DAY),
      completedEvent(newRequest, 'm', now - 60_000),
    ]);

    // The service's pass runs every second: the old rows go, whichever pass first sees them stored.
    const deadline = Date.now() + 15_000;
    let requests: string[] = [];
    let decisions: string[] = [];
    for (;;) {
      requests = await ids(started.db, 'policy_requests', 'request_id');
      decisions = await ids(started.db, 'policy_decisions', 'id');
      const settled = decisions.includes(newDecision.decisionId) && requests.includes(newRequest);
      if (
        (settled && !decisions.includes(oldDecision.decisionId) && !requests.includes(oldRequest)) ||
        Date.now() > deadline
      )
        break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(requests).toContain(newRequest);
    expect(requests).not.toContain(oldRequest);
    expect(decisions).toContain(newDecision.decisionId);
    expect(decisions).not.toContain(oldDecision.decisionId);
    expect((await started.t.call('GET', `/api/v1/decisions/${newDecision.decisionId}`)).status).toBe(200);
    expect((await started.t.call('GET', `/api/v1/decisions/${oldDecision.decisionId}`)).status).toBe(404);
  });
});

import type { Db } from '@flowloom/store';
import type { Answer } from './load.js';
import { until } from './until.js';

const COMPLETED = 'dev.flowloom.gateway.request.completed.v1';

/** Ledger entries of completed requests: how many times each request id is there. */
export async function completedInLedger(db: Db): Promise<Map<string, number>> {
  const { rows } = await db.query<{ request_id: string; n: number }>(
    `select entry::jsonb->'data'->>'requestId' as request_id, count(*)::int as n
       from audit_entries where event_type = $1 group by 1`,
    [COMPLETED],
  );
  return new Map(rows.map((r) => [r.request_id, r.n]));
}

/** Waits until every answered request is in the ledger; returns that reading. */
export function ledgerHolding(db: Db, answered: readonly Answer[], timeoutMs: number) {
  return until(
    'every answered request in the ledger',
    async () => {
      const now = await completedInLedger(db);
      return answered.every((a) => now.has(a.requestId ?? '')) ? now : undefined;
    },
    timeoutMs,
  );
}

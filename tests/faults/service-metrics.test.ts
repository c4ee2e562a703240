import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockJobPolicy } from './block-job-policy.js';
import { type DistributedRun, startDistributedRun } from './distributed-run.js';
import { metricOf, type Service } from './services.js';
import { until } from './until.js';

// /metrics on the standalone policy and audit services (`flowloom serve policy|audit`, on PostgreSQL
// and Kafka): process metrics, the bus's state, and each service's own series, which move as
// traffic through a standalone gateway reaches them.

const ADMIN = 'flk_faults-service-metrics-admin-0123456789ab';

let run: DistributedRun | undefined;
let gateway: Service;
let policy: Service;
let audit: Service;

beforeAll(async () => {
  run = await startDistributedRun({
    name: 'service-metrics',
    admin: ADMIN,
    startupPolicy: blockJobPolicy('metrics-guard'),
  });
  ({ gateway, policy, audit } = run);
}, 180_000);

afterAll(() => run?.tearDown(), 60_000);

async function chat(job: string): Promise<number> {
  const res = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${ADMIN}`,
      'content-type': 'application/json',
      'x-flowloom-job': job,
    },
    body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: 'hello' }] }),
  });
  await res.body?.cancel();
  return res.status;
}

/** A metric's value once `ok` holds for it. */
function metricUntil(url: string, name: string, ok: (v: number) => boolean): Promise<number> {
  return until(
    `${name} on ${url}`,
    async () => {
      const v = await metricOf(url, name);
      return v !== undefined && ok(v) ? v : undefined;
    },
    60_000,
  );
}

describe('/metrics on the standalone policy and audit services', () => {
  it('when scraped, then each serves Prometheus text with process metrics and the bus connected', async () => {
    for (const service of [policy, audit]) {
      const res = await fetch(`${service.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const text = await res.text();
      expect(text).toContain('flowloom_process_resident_memory_bytes');
      expect(text).toContain('flowloom_bus_unavailable_seconds');
      await metricUntil(service.url, 'flowloom_bus_connected', (v) => v === 1);
    }
    expect(await metricOf(policy.url, 'flowloom_policy_outbox_backlog_events')).toBeGreaterThanOrEqual(0);
    expect(await metricOf(audit.url, 'flowloom_audit_checkpoint_age_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('when traffic flows through the gateway, then the ledger size, appends, consumed events and stored decisions grow', async () => {
    // Startup events (policy deployed, logins) may still be arriving: compare against a settled count.
    const size0 = await metricUntil(audit.url, 'flowloom_audit_tree_size', (v) => v > 0);
    const appended0 = (await metricOf(audit.url, 'flowloom_audit_entries_appended_total')) ?? -1;
    const consumed0 = (await metricOf(audit.url, 'flowloom_audit_events_consumed_total')) ?? -1;
    const decisions0 = (await metricOf(policy.url, 'flowloom_policy_decisions_stored_total')) ?? -1;
    expect(Math.min(appended0, consumed0, decisions0)).toBeGreaterThanOrEqual(0);

    await until(
      'the bundle at the gateway',
      async () => ((await chat('blocked')) === 403 ? true : undefined),
      60_000,
    );
    expect(await chat('fine')).toBe(200);

    const size1 = await metricUntil(audit.url, 'flowloom_audit_tree_size', (v) => v >= size0 + 2);
    await metricUntil(audit.url, 'flowloom_audit_entries_appended_total', (v) => v >= appended0 + 2);
    await metricUntil(audit.url, 'flowloom_audit_events_consumed_total', (v) => v >= consumed0 + 2);
    await metricUntil(policy.url, 'flowloom_policy_decisions_stored_total', (v) => v > decisions0);
    // A checkpoint covering the new entries is signed within the interval, so its age stays short.
    await metricUntil(audit.url, 'flowloom_audit_checkpoint_age_seconds', (v) => v >= 0 && v < 30);
    expect(size1).toBeGreaterThan(size0);
  }, 120_000);
});

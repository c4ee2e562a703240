import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@flowloom/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPlatform, startEmbeddedPlatform } from '../src/commands/up.js';

// In `flowloom up` (one process) there is one /metrics, the gateway's: the audit and policy series
// register on it once each, beside the gateway's own, and move with the traffic.

const ADMIN = 'flk_up-metrics-admin-key-0123456789abcdef';

let dir: string;
let platform: EmbeddedPlatform;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-up-metrics-'));
  writeFileSync(
    join(dir, 'policy.yaml'),
    'name: guard\nrules:\n  - id: blocked\n    condition: request.job == "blocked"\n    action: block\n    message: blocked\n',
  );
  const env = {
    FLOWLOOM_DATA_DIR: dir,
    FLOWLOOM_HTTP_PORT: '0',
    FLOWLOOM_GRPC_PORT: '0',
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'silent',
    FLOWLOOM_POLICY_FILE: join(dir, 'policy.yaml'),
  };
  const config = loadConfig({ env, cwd: dir });
  platform = await startEmbeddedPlatform({ ...config, audit: { ...config.audit, grpcPort: 0 } }, env);
}, 120_000);

afterAll(async () => {
  await platform?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function scrape(): Promise<string> {
  return (await fetch(`${platform.gateway.httpUrl}/metrics`)).text();
}

function value(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

describe('flowloom up: /metrics', () => {
  it('when scraped, then the audit and policy series are there exactly once beside the gateway’s', async () => {
    const text = await scrape();
    for (const name of [
      'flowloom_audit_tree_size',
      'flowloom_audit_entries_appended_total',
      'flowloom_audit_events_consumed_total',
      'flowloom_audit_checkpoint_age_seconds',
      'flowloom_audit_index_behind_entries',
      'flowloom_policy_decisions_stored_total',
      'flowloom_policy_outbox_backlog_events',
      'flowloom_requests_total',
      'flowloom_process_resident_memory_bytes',
    ]) {
      expect(text.split('\n').filter((l) => l.startsWith(`# TYPE ${name} `)).length, name).toBe(1);
    }
  });

  it('when a request is answered and one is refused by policy, then the ledger and decision series grow', async () => {
    const before = await scrape();
    const ask = (job: string) =>
      fetch(`${platform.gateway.httpUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ADMIN}`,
          'content-type': 'application/json',
          'x-flowloom-job': job,
        },
        body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] }),
      });
    expect((await ask('fine')).status).toBe(200);
    expect((await ask('blocked')).status).toBe(403);
    // The ledger and the decision store take the events after the answers, each at its own pace:
    // wait (up to 10 s) until every series has moved, then check each one.
    const growing = [
      'flowloom_audit_tree_size',
      'flowloom_audit_entries_appended_total',
      'flowloom_audit_events_consumed_total',
      'flowloom_policy_decisions_stored_total',
    ];
    let after = await scrape();
    for (let i = 0; i < 100 && growing.some((name) => value(after, name) <= value(before, name)); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await scrape();
    }
    for (const name of growing) expect(value(after, name), name).toBeGreaterThan(value(before, name));

    // A text query brings the search index up to every committed entry, words included: it leaves
    // none out, and only entries appended since it began (the query itself is audited) can be behind.
    const beforeSearch = await scrape();
    const search = await fetch(`${platform.gateway.httpUrl}/api/v1/audit/entries?q=blocked`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(search.status).toBe(200);
    expect(((await search.json()) as { notSearched: number }).notSearched).toBe(0);
    const searched = await scrape();
    expect(value(searched, 'flowloom_audit_tree_size')).toBeGreaterThan(0);
    const appendedSince =
      value(searched, 'flowloom_audit_tree_size') - value(beforeSearch, 'flowloom_audit_tree_size');
    for (const part of ['attributes', 'words'])
      expect(
        value(searched, `flowloom_audit_index_behind_entries{part="${part}"}`),
        part,
      ).toBeLessThanOrEqual(appendedSince);
  });

  it('when scraped, then the embedded database thread’s memory is there: its WASM memory and its own heap', async () => {
    const text = await scrape();
    // PGlite starts PostgreSQL's WASM memory at 128 MB; the thread's heap is small but never empty.
    expect(value(text, 'flowloom_embedded_db_memory_bytes{part="wasm"}')).toBeGreaterThanOrEqual(
      128 * 2 ** 20,
    );
    expect(value(text, 'flowloom_embedded_db_memory_bytes{part="heap_used"}')).toBeGreaterThan(0);
  });
});

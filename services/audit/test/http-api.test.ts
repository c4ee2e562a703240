import { InProcessBus } from '@flowloom/bus';
import { createEvent } from '@flowloom/contracts';
import {
  openCheckpoint,
  parsePublicKeyFile,
  parseVerifierKey,
  verifyConsistency,
  verifyInclusion,
} from '@flowloom/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StandaloneAudit, startAudit } from '../src/main.js';
import type { TestDatabase } from './databases.js';
import {
  COMPLETED,
  KEY_CHANGED,
  openTestDatabase,
  requestEvent,
  standaloneAuditConfig,
  tempDir,
} from './support.js';
import { startWitness, type TestWitness } from './witness.js';

// The standalone audit service (distributed mode): its own HTTP server, admins by FLOWLOOM_ADMIN_KEY.

const ADMIN = 'flk_audit-http-admin-key-0123456789abcdef';
const OLD = new Date('2019-03-01T00:00:00Z');
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

describe('the audit HTTP API', () => {
  let database: TestDatabase;
  let audit: StandaloneAudit;
  let bus: InProcessBus;
  let witness: TestWitness;
  const dir = tempDir();
  const events = [
    ...Array.from({ length: 30 }, (_, i) => requestEvent(i, { project: i % 3 === 0 ? 'apollo' : 'zeus' })),
    ...Array.from({ length: 4 }, (_, i) => requestEvent(100 + i, { at: OLD, failed: true })),
    createEvent(KEY_CHANGED, 'flowloom/gateway', {
      keyId: 'k-1',
      action: 'revoked',
      actor: 'dana',
      name: 'old ci',
    }),
  ];

  const call = async (
    method: string,
    path: string,
    options: { key?: string | null; body?: unknown } = {},
  ) => {
    const key = options.key === undefined ? ADMIN : options.key;
    const response = await fetch(`${audit.httpUrl}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // text
    }
    return { status: response.status, body: body as Record<string, unknown> & { data?: unknown[] }, text };
  };

  beforeAll(async () => {
    witness = await startWitness();
    database = await openTestDatabase('pglite');
    bus = new InProcessBus();
    const config = standaloneAuditConfig(dir.path, ADMIN, {
      checkpointIntervalMs: 200,
      checkpointUrl: witness.url,
      retention: { 'dev.flowloom.gateway.request.failed.v1': 30 },
    });
    audit = await startAudit({ config, db: database.db, bus });
    await bus.publish(events);
  });
  afterAll(async () => {
    await audit?.close();
    await bus?.close();
    await database?.drop();
    await witness?.close();
    dir.remove();
  });

  it('when anyone asks for the public key and the latest checkpoint, then they get them without a key', async () => {
    const keys = await call('GET', '/api/v1/audit/public-key', { key: null });
    expect(keys.status).toBe(200);
    const parsed = parsePublicKeyFile(keys.text);
    const latest = await call('GET', '/api/v1/audit/checkpoints/latest', { key: null });
    expect(latest.status).toBe(200);
    const opened = openCheckpoint(String(latest.body['checkpoint']), parsed);
    expect(opened.checkpoint.size).toBe(latest.body['treeSize']);
    expect((await call('GET', '/api/v1/audit/openapi.json', { key: null })).body['openapi']).toBe('3.1.0');
  });

  it('when an admin endpoint is called without a valid admin key, then it answers 401 and reveals nothing', async () => {
    const missing = await call('GET', '/api/v1/audit/entries', { key: null });
    expect(missing.status).toBe(401);
    expect(missing.text).not.toContain('apollo');
    expect(
      (await call('GET', '/api/v1/audit/entries', { key: 'flk_wrong-key-0123456789abcdefghij' })).status,
    ).toBe(401);
    expect((await call('POST', '/api/v1/audit/keys/rotate', { key: null, body: {} })).status).toBe(401);
  });

  it('when entries are queried with filters, then each narrows the result and pages chain by nextCursor', async () => {
    const apollo = await call('GET', '/api/v1/audit/entries?project=apollo&limit=4');
    expect(apollo.status).toBe(200);
    expect(apollo.body.data).toHaveLength(4);
    const all: unknown[] = [...(apollo.body.data ?? [])];
    let cursor = apollo.body['nextCursor'];
    while (typeof cursor === 'string') {
      const next = await call('GET', `/api/v1/audit/entries?project=apollo&limit=4&cursor=${cursor}`);
      all.push(...(next.body.data ?? []));
      cursor = next.body['nextCursor'];
    }
    expect(all).toHaveLength(10);
    const revoked = await call('GET', '/api/v1/audit/entries?outcome=revoked&actor=dana');
    expect(revoked.body.data).toHaveLength(1);
    const failed = await call(
      'GET',
      `/api/v1/audit/entries?type=dev.flowloom.gateway.request.*&outcome=rate_limited`,
    );
    expect(failed.body.data).toHaveLength(4);
    const window = await call(
      'GET',
      `/api/v1/audit/entries?to=${encodeURIComponent(OLD.toISOString())}&type=${COMPLETED}`,
    );
    expect(window.body.data).toHaveLength(0);
    const words = await call('GET', '/api/v1/audit/entries?q=slow%20down%20request%20102');
    expect(
      (words.body.data as Array<{ event: { data: { requestId: string } } }>).map(
        (e) => e.event.data.requestId,
      ),
    ).toEqual(['req-102']);
    // Every committed entry was searched (the words caught up first).
    expect(words.body.notSearched).toBe(0);
    const one = await call('GET', `/api/v1/audit/events/${events[3]?.id}`);
    expect(one.body).toMatchObject({ index: 3, eventId: events[3]?.id, project: 'apollo' });
    expect((await call('GET', '/api/v1/audit/entries/3')).body['eventId']).toBe(events[3]?.id);
    expect((await call('GET', '/api/v1/audit/entries/99999')).status).toBe(404);
    expect((await call('GET', '/api/v1/audit/events/nope')).status).toBe(404);
  });

  it('when a query is malformed, then it answers 400 naming the parameter and changes nothing', async () => {
    for (const query of [
      'limit=0',
      'limit=5000',
      'from=yesterday',
      'type=dev%25',
      'cursor=-1',
      'order=sideways',
      'colour=red',
      `q=${'x'.repeat(501)}`,
    ]) {
      const response = await call('GET', `/api/v1/audit/entries?${query}`);
      expect(response.status, query).toBe(400);
      expect((response.body['error'] as { code: string }).code).toBe('invalid_request');
    }
    expect((await call('GET', '/api/v1/audit/entries/abc')).status).toBe(400);
    expect((await call('GET', '/api/v1/audit/proofs/inclusion?index=1&eventId=x')).status).toBe(400);
    expect(
      (await call('POST', '/api/v1/audit/activity', { body: { kind: 'delete-everything' } })).status,
    ).toBe(400);
    expect((await call('GET', '/api/v1/audit/log/entries?start=0&end=20001')).status).toBe(400);
  });

  it('when filter values carry SQL, then they match nothing and the ledger is intact', async () => {
    const size = (await call('GET', '/api/v1/audit/info')).body['treeSize'];
    for (const query of [
      `q=${encodeURIComponent("'; drop table audit_entries; --")}`,
      `project=${encodeURIComponent("' or '1'='1")}`,
      `actor=${encodeURIComponent("dana' --")}`,
      `key=${encodeURIComponent('%')}`,
    ]) {
      const response = await call('GET', `/api/v1/audit/entries?${query}`);
      expect(response.status, query).toBe(200);
      expect(response.body.data, query).toEqual([]);
    }
    expect((await call('GET', '/api/v1/audit/info')).body['treeSize']).toBe(size);
    expect((await call('GET', '/api/v1/audit/entries?limit=1000')).body.data?.length).toBeGreaterThanOrEqual(
      35,
    );
  });

  it('when proofs are asked for, then they verify against the signed checkpoint they come with', async () => {
    const keys = parsePublicKeyFile((await call('GET', '/api/v1/audit/public-key', { key: null })).text);
    for (const query of ['index=0', 'index=17', `eventId=${events[29]?.id}`]) {
      const proof = await call('GET', `/api/v1/audit/proofs/inclusion?${query}`);
      expect(proof.status, query).toBe(200);
      const { checkpoint } = openCheckpoint(String(proof.body['checkpoint']), keys);
      const ok = verifyInclusion(
        proof.body['index'] as number,
        checkpoint.size,
        b64(String(proof.body['leafHash'])),
        (proof.body['proof'] as string[]).map(b64),
        checkpoint.rootHash,
      );
      expect(ok, query).toBe(true);
    }
    const consistency = await call('GET', '/api/v1/audit/proofs/consistency?from=7');
    const { checkpoint } = openCheckpoint(String(consistency.body['checkpoint']), keys);
    expect(
      verifyConsistency(
        7,
        checkpoint.size,
        (consistency.body['proof'] as string[]).map(b64),
        b64(String(consistency.body['fromRoot'])),
        checkpoint.rootHash,
      ),
    ).toBe(true);
    expect((await call('GET', '/api/v1/audit/proofs/inclusion?index=100000')).status).toBe(404);
    expect((await call('GET', '/api/v1/audit/proofs/consistency?from=1&to=100000')).status).toBe(400);
  });

  it('when the signing key is rotated, then old checkpoints still verify and new ones use the new key', async () => {
    const before = await call('GET', '/api/v1/audit/checkpoints/latest', { key: null });
    const rotated = await call('POST', '/api/v1/audit/keys/rotate', { body: {} });
    expect(rotated.status).toBe(200);
    expect(rotated.body['keyId']).not.toBe(before.body['keyId']);
    const keysText = (await call('GET', '/api/v1/audit/public-key', { key: null })).text;
    const keys = parsePublicKeyFile(keysText);
    expect(keys).toHaveLength(2);
    expect(keysText.split('\n')[0]).toBe(rotated.body['verifierKey']);
    expect(openCheckpoint(String(before.body['checkpoint']), keys).checkpoint.size).toBe(
      before.body['treeSize'],
    );
    const after = await call('GET', '/api/v1/audit/checkpoints/latest', { key: null });
    expect(after.body['keyId']).toBe(rotated.body['keyId']);
    expect(() =>
      openCheckpoint(String(after.body['checkpoint']), [parseVerifierKey(keysText.split('\n')[1] ?? '')]),
    ).toThrow();
    const recorded = await call('GET', '/api/v1/audit/entries?type=dev.flowloom.audit.key.rotated.v1');
    expect(recorded.body.data).toHaveLength(1);
  });

  it('when retention runs, then expired entries keep their hashes and lose their content', async () => {
    const run = await call('POST', '/api/v1/audit/retention/run', { body: {} });
    expect(run.status).toBe(200);
    expect(run.body['pruned']).toEqual([expect.objectContaining({ pruned: 4 })]);
    const pruned = await call('GET', '/api/v1/audit/entries?type=dev.flowloom.gateway.request.failed.v1');
    for (const entry of pruned.body.data as Array<Record<string, unknown>>) {
      expect(entry).toMatchObject({ pruned: true, event: null, actor: null, project: null });
      expect(entry['leafHash']).toMatch(/^[0-9a-f]{64}$/);
    }
    expect((await call('GET', '/api/v1/audit/entries?q=slow%20down')).body.data).toEqual([]);
  });

  it('when a report is asked for, then it maps the standard to evidence at a checkpoint and is itself recorded', async () => {
    const report = await call('GET', '/api/v1/audit/reports/hipaa');
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ format: 'flowloom.audit.report.v1', standard: { id: 'hipaa' } });
    expect((report.body['checkpoint'] as { treeSize: number }).treeSize).toBeGreaterThan(30);
    expect((await call('GET', '/api/v1/audit/reports/pci')).status).toBe(400);
    const recorded = await call('GET', '/api/v1/audit/entries?type=dev.flowloom.audit.report.generated.v1');
    expect(recorded.body.data).toHaveLength(1);
  });

  it('when new entries arrive, then a checkpoint is signed within the interval and reaches the witness, even after it failed', async () => {
    witness.failing = true;
    const latest = (await call('GET', '/api/v1/audit/checkpoints/latest', { key: null })).body[
      'treeSize'
    ] as number;
    await bus.publish([requestEvent(500)]);
    const deadline = Date.now() + 5_000;
    while (
      (await call('GET', '/api/v1/audit/checkpoints/latest', { key: null })).body['treeSize'] === latest
    ) {
      if (Date.now() > deadline) throw new Error('no checkpoint was signed');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await call('GET', '/api/v1/audit/info')).body['externalBacklog']).toHaveLength(1);
    witness.failing = false;
    await bus.publish([requestEvent(501)]);
    const until = Date.now() + 5_000;
    while (((await call('GET', '/api/v1/audit/info')).body['externalBacklog'] as unknown[]).length > 0) {
      if (Date.now() > until) throw new Error('the witness never got the checkpoint');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const newest = (await call('GET', '/api/v1/audit/checkpoints/latest', { key: null })).body['checkpoint'];
    expect(witness.received.map((r) => r.note)).toContain(newest);
  });
});

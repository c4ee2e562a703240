import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { auditGrpcClient } from '@flowloom/audit';
import { type Db, openPostgres } from '@flowloom/store';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../faults/engines.js';
import { CLI, type Service, serviceOnFreePorts } from '../faults/services.js';
import { tearDown } from '../faults/teardown.js';
import { until } from '../faults/until.js';

// `flowloom serve policy` and `flowloom serve audit`, each a process of its own on a real PostgreSQL
// and Kafka with no gateway running: admin logins and refused keys on their admin APIs are recorded as
// the gateway's auth events (source: the service), through the outbox the services relay themselves,
// and reach the audit ledger once each.

const ADMIN = 'flk_e2e-standalone-logins-admin-0123456789a';
const WRONG = 'flk_e2e-standalone-logins-wrong-0123456789a';
const BROKERS = process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092';
const SUCCEEDED = 'dev.flowloom.gateway.auth.succeeded.v1';
const FAILED = 'dev.flowloom.gateway.auth.failed.v1';

let database: { url: string; drop(): Promise<void> } | undefined;
let db: Db | undefined;
let work = '';
const services: Service[] = [];
let policy: Service;
let audit: Service;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'flowloom-e2e-admin-logins-'));
  database = await freshDatabase('flowloom_e2e_logins');
  const common: Record<string, string> = {
    FLOWLOOM_DATABASE_URL: database.url,
    FLOWLOOM_KAFKA_BROKERS: BROKERS,
    // Topics and consumer groups of this run only, on the shared Kafka.
    FLOWLOOM_KAFKA_TOPIC_PREFIX: `logins${randomBytes(4).toString('hex')}`,
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'error',
  };
  await promisify(execFile)('node', [CLI, 'migrate'], { env: { ...process.env, ...common } });
  // A gateway registers FLOWLOOM_ADMIN_KEY, then stops: only the policy and audit processes can
  // publish the events that follow.
  const gateway = await serviceOnFreePorts('gateway', 'gateway', common, work);
  await gateway.start();
  await gateway.stop();
  policy = await serviceOnFreePorts('policy', 'policy', common, work);
  audit = await serviceOnFreePorts('audit', 'audit', common, work);
  services.push(policy, audit);
  await Promise.all(services.map((s) => s.start()));
  db = await openPostgres(database.url, { max: 2 });
}, 120_000);

afterAll(() => tearDown({ services, db, database, work }), 60_000);

interface AuthEntry extends Record<string, unknown> {
  event_id: string;
  event_type: string;
  source: string;
  entry: string;
}

async function authEntries(): Promise<AuthEntry[]> {
  const { rows } = await db!.query<AuthEntry>(
    `select event_id, event_type, source, entry from audit_entries
      where event_type in ($1, $2) order by idx`,
    [SUCCEEDED, FAILED],
  );
  return rows;
}

async function status(url: string, key: string): Promise<number> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
  await response.arrayBuffer();
  return response.status;
}

describe('admin logins on the standalone policy and audit services', () => {
  it('when a wrong key and an admin key reach serve policy and serve audit, then each service records both as auth events that reach the ledger once', async () => {
    expect(await status(`${policy.url}/api/v1/policies`, WRONG)).toBe(401);
    expect(await status(`${policy.url}/api/v1/policies`, ADMIN)).toBe(200);
    expect(await status(`${audit.url}/api/v1/audit/entries`, WRONG)).toBe(401);
    expect(await status(`${audit.url}/api/v1/audit/entries`, ADMIN)).toBe(200);

    const entries = await until(
      'the four auth events in the ledger',
      async () => {
        const rows = await authEntries();
        return rows.length >= 4 ? rows : undefined;
      },
      60_000,
    );
    const seen = entries.map((e) => `${e.source} ${e.event_type}`).sort();
    expect(seen).toEqual([
      `flowloom/audit ${FAILED}`,
      `flowloom/audit ${SUCCEEDED}`,
      `flowloom/policy ${FAILED}`,
      `flowloom/policy ${SUCCEEDED}`,
    ]);
    for (const e of entries) {
      const event = JSON.parse(e.entry) as { data: { surface: string; keyHint?: string; reason?: string } };
      expect(event.data.surface).toBe('admin');
      // The hint only, never a secret.
      expect(e.entry).not.toContain(ADMIN);
      expect(e.entry).not.toContain(WRONG);
      if (e.event_type === FAILED) expect(event.data).toMatchObject({ reason: 'invalid_api_key' });
      else expect(ADMIN.startsWith((event.data.keyHint ?? '-').replace(/…$/, ''))).toBe(true);
    }

    // Logins are recorded once per key per window: more admin calls add nothing.
    expect(await status(`${policy.url}/api/v1/policies`, ADMIN)).toBe(200);
    expect(await status(`${audit.url}/api/v1/audit/entries`, ADMIN)).toBe(200);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await authEntries()).toHaveLength(4);
  }, 90_000);

  it('when a wrong key is refused again and again, then the refusals are counted into one event, recorded when the service stops', async () => {
    const before = (await authEntries()).length;
    for (let i = 0; i < 5; i++) expect(await status(`${policy.url}/api/v1/policies`, WRONG)).toBe(401);
    // Still inside the window of the first refusal: nothing new yet.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await authEntries()).toHaveLength(before);

    // A graceful stop records what the open window counted, and publishes it before exiting.
    await policy.stop();
    const summary = await until(
      'the refusals summary in the ledger',
      async () => (await authEntries()).slice(before).find((e) => e.event_type === FAILED),
      60_000,
    );
    expect(summary.source).toBe('flowloom/policy');
    expect(JSON.parse(summary.entry)).toMatchObject({ data: { reason: 'invalid_api_key', count: 5 } });
  }, 90_000);

  it('when a wrong key reaches serve audit over gRPC, then its refusal is recorded as well', async () => {
    // A key not seen before, so its refusal opens a window of its own and is recorded at once.
    const grpcWrong = 'flk_grpc-standalone-logins-wrong-0123456789';
    const Audit = auditGrpcClient();
    const client = new Audit(
      `127.0.0.1:${audit.env.FLOWLOOM_AUDIT_GRPC_PORT}`,
      grpc.credentials.createInsecure(),
    );
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${grpcWrong}`);
    try {
      const refused = await new Promise<grpc.ServiceError | null>((resolve) => {
        const query = (client as unknown as Record<string, (...a: unknown[]) => void>).queryEntries;
        query?.call(client, { limit: 1 }, metadata, (error: grpc.ServiceError | null) => resolve(error));
      });
      expect(refused?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
    const entry = await until('the gRPC refusal in the ledger', async () =>
      (await authEntries()).find((e) => e.event_type === FAILED && e.entry.includes('"keyHint":"flk_grpc')),
    );
    expect(entry.source).toBe('flowloom/audit');
    // With the caller's address, as a refusal over HTTP has.
    expect(JSON.parse(entry.entry)).toMatchObject({
      data: { surface: 'admin', reason: 'invalid_api_key', sourceIp: '127.0.0.1' },
    });
  }, 90_000);
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessBus } from '@flowloom/bus';
import { loadConfig } from '@flowloom/config';
import {
  type CloudEvent,
  createEvent,
  OUTBOX_EVENT_REDRIVEN,
  POLICY_VERSION_PUSHED,
} from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import { openTestPostgres, type TestDatabase } from '@flowloom/gateway/testing/databases';
import {
  type AdminAuthorizer,
  type PolicyService,
  startPolicyHttp,
  startPolicyService,
} from '@flowloom/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-runner.js';

// `flowloom outbox parked --service policy` against a real policy service on PostgreSQL, on its own
// HTTP server (as `flowloom serve policy`). The row is parked by hand, as the policy relay parks one
// the bus refused for good (that runs against real Kafka in the policy service's tests).

const ADMIN = 'flk_policy_outbox_admin_0123456789';
const authorize: AdminAuthorizer = async (headers) => {
  if (headers.authorization !== `Bearer ${ADMIN}`) throw new AppError('forbidden', 'Admins only.');
  return { actor: 'key/k-1 (ops)', keyId: 'k-1', owner: 'ops', root: true, lineage: [] };
};

let database: TestDatabase;
let dir: string;
let bus: InProcessBus;
let service: PolicyService;
let http: Awaited<ReturnType<typeof startPolicyHttp>>;
const published: CloudEvent[] = [];

beforeAll(async () => {
  database = await openTestPostgres();
  dir = mkdtempSync(join(tmpdir(), 'flowloom-outbox-policy-'));
  bus = new InProcessBus();
  await bus.subscribe('recorder', async (event) => {
    published.push(event);
  });
  const config = loadConfig({ env: {}, cwd: dir, overrides: { logLevel: 'silent', dataDir: dir } });
  service = await startPolicyService({ config, db: database.db, bus, authorizeGateway: authorize });
  http = await startPolicyHttp(service.http, authorize, '127.0.0.1', 0);
});
afterAll(async () => {
  await http?.close();
  await service?.close();
  await bus?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const flowloom = (...args: string[]) => runCli({ url: http.url, apiKey: ADMIN }, ...args);

describe('flowloom outbox parked --service policy', () => {
  it('when a policy event is parked, then the command lists it from policy_outbox and --redrive publishes it', async () => {
    const parked = createEvent(POLICY_VERSION_PUSHED, 'flowloom/policy', { n: 1 }, 'policy/guard');
    await database.db.query(
      `insert into policy_outbox (id, event, parked_at, park_reason)
       values ($1, $2::jsonb, now(), 'MESSAGE_TOO_LARGE: too large')`,
      [parked.id, JSON.stringify(parked)],
    );

    const listed = await flowloom('outbox', 'parked', '--service', 'policy');
    expect(listed.code, listed.err).toBe(0);
    expect(listed.out).toContain("1 parked event(s) in the policy service's policy_outbox");
    expect(listed.out).toContain(`${parked.id}  ${POLICY_VERSION_PUSHED}`);
    expect(listed.out).toContain('MESSAGE_TOO_LARGE: too large');

    const redriven = await flowloom('outbox', 'parked', '--service', 'policy', '--redrive');
    expect(redriven.code, redriven.err).toBe(0);
    expect(redriven.out).toContain('Requeued 1: published 1, parked again 0');
    await service.flushEvents();
    expect(published.filter((e) => e.id === parked.id)).toHaveLength(1);
    expect(published.find((e) => e.type === OUTBOX_EVENT_REDRIVEN)).toMatchObject({
      source: 'flowloom/policy',
      data: { actor: 'key/k-1 (ops)', published: [parked.id] },
    });
    expect((await flowloom('outbox', 'parked', '--service', 'policy')).out).toBe(
      "No parked events in the policy service's policy_outbox.",
    );
  });

  it('when asked for help or given an unknown service, then it explains the option', async () => {
    expect((await flowloom('outbox', '--help')).out).toContain('--service policy');
    const wrong = await flowloom('outbox', 'parked', '--service', 'audit');
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toContain('--service must be gateway or policy, not "audit"');
  });
});

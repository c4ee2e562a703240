import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Db, openPostgres } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall } from '../bench/processes.js';
import {
  type CliResult,
  cleanEnv,
  enforceApproved,
  personalAdminEnv,
  pushInShadow,
  runCli,
} from '../e2e/cli-support.js';
import { PG_URL } from '../e2e/pg-schema.js';
import { freshDatabase } from './engines.js';
import { distributedServices, type Service } from './services.js';
import { tearDown } from './teardown.js';
import { until } from './until.js';

// Everything but requests reaches the ledger in distributed mode: `flowloom serve gateway|policy|audit`
// as processes of their own on PostgreSQL and the shared Kafka (topics of this run only). Keys are
// created, rotated, revoked, suspended by a policy and resumed; admins log in and wrong keys are
// refused on the gateway, the policy and the audit service; a policy is pushed, shadowed, promoted with
// a second admin's approval and rolled back; requests are decided and one is intervened on. Every event
// the services wrote to their outboxes must then be in the audit service's ledger exactly once, and the
// log must verify.
//
// The policy and audit services run as PostgreSQL logins of their own that own nothing, granted by
// `flowloom migrate` (policy.dbLogin, audit.dbLogin): that they start, authenticate admins, record
// their logins and append to the ledger is what proves the grants are enough; the last test proves
// they are no more.

const ADMIN = 'flk_faults-distributed-ledger-admin-0123456789';
const BROKERS = process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092';
const suffix = randomBytes(4).toString('hex');
const POLICY_LOGIN = `flowloom_policy_${suffix}`;
const AUDIT_LOGIN = `flowloom_audit_${suffix}`;
const POLICY = `name: ledger-guard
rules:
  - id: abuser
    condition: request.job == "abuse"
    action: suspend_key
    message: this job abuses the key
`;

let roles: Db | undefined;
let database: { url: string; drop(): Promise<void> } | undefined;
let db: Db | undefined;
let work = '';
const services: Service[] = [];
let gateway: Service;
let policy: Service;
let audit: Service;
const migrations: CliResult[] = [];

/** `url` connecting as `login` instead. */
function as(url: string, login: string): string {
  const parsed = new URL(url);
  parsed.username = login;
  parsed.password = 'unused-under-trust';
  return parsed.toString();
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'flowloom-faults-ledger-'));
  writeFileSync(join(work, 'guard.yaml'), POLICY);
  // Logins are cluster-wide: names of this run's own, dropped afterwards.
  roles = await openPostgres(PG_URL, { max: 1 });
  for (const login of [POLICY_LOGIN, AUDIT_LOGIN])
    await roles.exec(`create role ${login} login password 'unused-under-trust'`);
  database = await freshDatabase('flowloom_faults_ledger');
  const common: Record<string, string> = {
    FLOWLOOM_KAFKA_BROKERS: BROKERS,
    FLOWLOOM_KAFKA_TOPIC_PREFIX: `ledger${suffix}`,
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'error',
    FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '60000',
  };
  const migrateEnv = cleanEnv({
    ...common,
    FLOWLOOM_DATABASE_URL: database.url,
    FLOWLOOM_DATA_DIR: join(work, 'migrate'),
    FLOWLOOM_POLICY_DB_LOGIN: POLICY_LOGIN,
    FLOWLOOM_AUDIT_DB_LOGIN: AUDIT_LOGIN,
  });
  // Twice: a second run (every upgrade) must grant the same again, not fail.
  for (let i = 0; i < 2; i++) migrations.push(await runCli(['migrate'], migrateEnv));
  for (const m of migrations) expect(m.code, m.stdout + m.stderr).toBe(0);

  // Each peer connects as its own login; the gateway as the owner.
  ({ gateway, policy, audit } = await distributedServices(
    { ...common, FLOWLOOM_DATABASE_URL: database.url },
    work,
    {
      policy: { FLOWLOOM_DATABASE_URL: as(database.url, POLICY_LOGIN) },
      audit: { FLOWLOOM_DATABASE_URL: as(database.url, AUDIT_LOGIN) },
    },
  ));
  services.push(gateway, policy, audit);
  await Promise.all(services.map((s) => s.start()));
  db = await openPostgres(database.url, { max: 2 });
}, 120_000);

afterAll(async () => {
  await tearDown({ services, db, database, work });
  for (const login of [POLICY_LOGIN, AUDIT_LOGIN])
    await roles?.exec(`drop role if exists ${login}`).catch((error: Error) => console.error(error.message));
  await roles?.close();
}, 60_000);

/** `flowloom ...args` as `env`, which must succeed; its stdout. */
async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const result = await runCli(args, env);
  expect(result.code, `flowloom ${args.join(' ')}:\n${result.stdout}\n${result.stderr}`).toBe(0);
  return result.stdout;
}

async function status(url: string, key: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, headers: { authorization: `Bearer ${key}`, ...init.headers } });
}

async function chat(key: string, job: string): Promise<{ status: number; decision: string | null }> {
  const response = await status(`${gateway.url}/v1/chat/completions`, key, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-flowloom-job': job },
    body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: `from ${job}` }] }),
  });
  await response.arrayBuffer();
  return { status: response.status, decision: response.headers.get('x-flowloom-decision') };
}

interface Entry {
  eventId: string;
  type: string;
  source: string;
  event: { id: string; data: Record<string, unknown> } | null;
}

/** The ledger's entries of `type`, read through the audit service's API. */
async function entriesOfType(type: string): Promise<Entry[]> {
  const found: Entry[] = [];
  let cursor: string | null = null;
  do {
    const page: { data: Entry[]; nextCursor: string | null } = await adminCall<{
      data: Entry[];
      nextCursor: string | null;
    }>(
      audit.url,
      ADMIN,
      'GET',
      `/api/v1/audit/entries?type=${type}&limit=1000&order=asc${cursor ? `&cursor=${cursor}` : ''}`,
    );
    found.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor);
  return found;
}

/** Every event the services wrote: the gateway's outbox (also the policy and audit services' logins) and the policy service's. */
async function written(): Promise<Map<string, string>> {
  const { rows } = await db!.query<{ id: string; type: string }>(
    `select id::text as id, type from outbox
     union all select id, event->>'type' from policy_outbox`,
  );
  return new Map(rows.map((r) => [r.id, r.type]));
}

describe('distributed mode: every kind of event reaches the ledger', () => {
  it('when keys, logins, policy changes, decisions and an intervention happen across serve gateway|policy|audit, then the ledger holds each event exactly once and verifies', async () => {
    const started = Date.now();
    expect(migrations[0]?.stdout).toContain(`Policy login ${POLICY_LOGIN}:`);
    expect(migrations[0]?.stdout).toContain(`Audit login ${AUDIT_LOGIN}: member of flowloom_audit_writer`);
    expect(migrations[1]?.stdout).toContain('Schema is up to date.');

    // Keys: personal admins (the bootstrap key can neither push nor approve), a member, a rotation, a revocation.
    const rootEnv = cleanEnv({ FLOWLOOM_URL: gateway.url, FLOWLOOM_API_KEY: ADMIN });
    const aliceEnv = await personalAdminEnv(gateway.url, rootEnv, 'alice');
    const bobEnv = await personalAdminEnv(gateway.url, rootEnv, 'bob');
    const member = JSON.parse(await cli(['keys', 'create', '--name', 'agent', '--json'], rootEnv)) as {
      id: string;
      key: string;
    };
    const spare = JSON.parse(await cli(['keys', 'create', '--name', 'spare', '--json'], rootEnv)) as {
      id: string;
    };
    const rotated = JSON.parse(
      await cli(['keys', 'rotate', spare.id, '--grace-seconds', '0', '--json'], rootEnv),
    ) as { id: string };
    await cli(['keys', 'revoke', rotated.id], rootEnv);

    // Logins and refusals, on each service's own port: a key refused there for the first time is recorded at once.
    const alice = String(aliceEnv.FLOWLOOM_API_KEY);
    expect((await status(`${gateway.url}/v1/models`, 'flk_wrong-on-the-gateway-0123456789abcd')).status).toBe(
      401,
    );
    expect(
      (await status(`${policy.url}/api/v1/policies`, 'flk_wrong-on-the-policy-0123456789abcde')).status,
    ).toBe(401);
    expect(
      (await status(`${audit.url}/api/v1/audit/entries`, 'flk_wrong-on-the-audit-0123456789abcdef')).status,
    ).toBe(401);
    expect((await status(`${policy.url}/api/v1/policies`, alice)).status).toBe(200);
    expect((await status(`${audit.url}/api/v1/audit/entries`, alice)).status).toBe(200);

    // Policy: pushed by alice, shadowed, enforced once bob approves, until the gateway has it.
    const version = await pushInShadow(join(work, 'guard.yaml'), 'ledger-guard', 'guard keys', aliceEnv);
    const promotionId = await enforceApproved('ledger-guard', version, aliceEnv, bobEnv);
    await until('the gateway to enforce the approved version', async () => {
      const active = await adminCall<{ policies: Array<{ stable?: string }> }>(
        gateway.url,
        ADMIN,
        'GET',
        '/api/v1/gateway/policy',
      );
      return active.policies.some((p) => p.stable === version) ? true : undefined;
    });

    // Decisions: one allowed, one that suspends the key (an intervention); then an admin resumes it.
    const allowed = await chat(member.key, 'fine');
    expect(allowed.status).toBe(200);
    const suspended = await chat(member.key, 'abuse');
    expect(suspended.status).toBe(403);
    expect(allowed.decision).not.toBeNull();
    expect(suspended.decision).not.toBeNull();
    await cli(['keys', 'resume', member.id], rootEnv);
    expect((await chat(member.key, 'fine-again')).status).toBe(200);
    await cli(['policy', 'rollback', 'ledger-guard'], aliceEnv);
    const actedSeconds = (Date.now() - started) / 1000;

    // Every event written is in the ledger, found by its type; none twice.
    const expected = await written();
    const types = [...new Set(expected.values())].sort();
    const ledger = await until(
      'every written event in the ledger',
      async () => {
        const byType = new Map<string, Entry[]>();
        for (const type of types) byType.set(type, await entriesOfType(type));
        const ids = [...byType.values()].flat().map((e) => e.eventId);
        return [...expected.keys()].every((id) => ids.includes(id)) ? byType : undefined;
      },
      60_000,
    );
    const deliveredSeconds = (Date.now() - started) / 1000 - actedSeconds;
    const all = [...ledger.values()].flat();
    const counts = new Map<string, number>();
    for (const e of all) counts.set(e.eventId, (counts.get(e.eventId) ?? 0) + 1);
    expect([...counts].filter(([, n]) => n !== 1)).toEqual([]);
    // And each one by its id.
    for (const [id, type] of expected) {
      const one = await adminCall<Entry>(audit.url, ADMIN, 'GET', `/api/v1/audit/events/${id}`);
      expect([one.eventId, one.type]).toEqual([id, type]);
    }

    const data = (type: string): Array<Record<string, unknown>> =>
      (ledger.get(`dev.flowloom.${type}.v1`) ?? []).map((e) => ({ source: e.source, ...e.event?.data }));
    expect(data('gateway.key.changed').map((d) => d.action)).toEqual(
      expect.arrayContaining(['created', 'rotated', 'revoked', 'suspended', 'resumed']),
    );
    expect(data('gateway.key.changed')).toContainEqual(
      expect.objectContaining({ action: 'suspended', keyId: member.id, decisionId: suspended.decision }),
    );
    const sources = (type: string) => [...new Set(data(type).map((d) => d.source))].sort();
    expect(sources('gateway.auth.succeeded')).toEqual([
      'flowloom/audit',
      'flowloom/gateway',
      'flowloom/policy',
    ]);
    expect(sources('gateway.auth.failed')).toEqual(['flowloom/audit', 'flowloom/gateway', 'flowloom/policy']);
    expect(data('policy.version.pushed')).toEqual([
      expect.objectContaining({ name: 'ledger-guard', version, message: 'guard keys' }),
    ]);
    expect(data('policy.promotion.requested')).toEqual([expect.objectContaining({ promotionId, version })]);
    expect(data('policy.promotion.approved')).toEqual([
      expect.objectContaining({ promotionId, version, approvedBy: 'bob' }),
    ]);
    // Shadow, enforce (by the approval), rollback.
    expect(
      data('policy.deployment.changed').map((d) => [
        d.candidate ?? null,
        d.candidateMode ?? null,
        d.stable ?? null,
      ]),
    ).toEqual([
      [version, 'shadow', null],
      [null, null, version],
      [version, 'shadow', null],
    ]);
    const decisions = new Map(data('policy.decision').map((d) => [String(d.decisionId), d]));
    expect(decisions.get(String(allowed.decision))).toMatchObject({ verdict: 'allow', job: 'fine' });
    expect(decisions.get(String(suspended.decision))).toMatchObject({
      verdict: 'suspend_key',
      enforced: true,
      rule: 'abuser',
      version,
    });
    expect(data('policy.intervention')).toContainEqual(
      expect.objectContaining({ decisionId: suspended.decision, action: 'suspend_key', enforced: true }),
    );

    // The log verifies end to end at a fresh checkpoint.
    await adminCall(audit.url, ADMIN, 'POST', '/api/v1/audit/checkpoints');
    const verified = await runCli(
      ['audit', 'verify', '--database-url', database!.url],
      cleanEnv({ FLOWLOOM_LOG_LEVEL: 'warn' }),
    );
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^OK: \d+ entries/);
    console.log(
      `[faults] distributed ledger: ${expected.size} events of ${types.length} types written by serve gateway|policy|audit in ${actedSeconds.toFixed(1)} s, all in the ledger exactly once ${deliveredSeconds.toFixed(1)} s later; policy and audit ran as logins ${POLICY_LOGIN}, ${AUDIT_LOGIN}`,
    );
  }, 90_000);

  it('when a configured login does not exist, is the owner itself, or the audit login has no ledger role, then migrate fails naming the setting and the fix', async () => {
    const migrateWith = (extra: Record<string, string>) =>
      runCli(
        ['migrate'],
        cleanEnv({ FLOWLOOM_DATABASE_URL: database!.url, FLOWLOOM_LOG_LEVEL: 'error', ...extra }),
      );
    const missing = await migrateWith({ FLOWLOOM_POLICY_DB_LOGIN: `nobody_${suffix}` });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(`policy.dbLogin (FLOWLOOM_POLICY_DB_LOGIN) is "nobody_${suffix}"`);
    expect(missing.stderr).toContain(`CREATE ROLE nobody_${suffix} LOGIN`);
    const owner = await migrateWith({ FLOWLOOM_AUDIT_DB_LOGIN: 'postgres' });
    expect(owner.code).not.toBe(0);
    expect(owner.stderr).toContain('the user flowloom migrate runs as');
    const noRole = await migrateWith({ FLOWLOOM_AUDIT_DB_LOGIN: AUDIT_LOGIN, FLOWLOOM_AUDIT_DB_ROLE: 'off' });
    expect(noRole.code).not.toBe(0);
    expect(noRole.stderr).toContain('audit.dbRole=off');
  }, 60_000);

  it('when the policy and audit logins try more than their services need, then PostgreSQL refuses', async () => {
    const refusals: Array<[login: string, sql: string]> = [
      [POLICY_LOGIN, 'delete from api_keys'],
      [POLICY_LOGIN, "update api_keys set role = 'admin'"],
      [POLICY_LOGIN, 'select count(*) from audit_entries'],
      [POLICY_LOGIN, 'drop table policy_versions'],
      [POLICY_LOGIN, 'create table intruder (id int)'],
      [AUDIT_LOGIN, 'delete from api_keys'],
      [AUDIT_LOGIN, 'insert into api_keys (id) values (gen_random_uuid())'],
      [AUDIT_LOGIN, 'update audit_entries set source = source'],
      [AUDIT_LOGIN, 'delete from audit_entries'],
      [AUDIT_LOGIN, 'truncate audit_checkpoints'],
      [AUDIT_LOGIN, 'select count(*) from policy_versions'],
      [AUDIT_LOGIN, 'drop table outbox'],
    ];
    for (const login of [POLICY_LOGIN, AUDIT_LOGIN]) {
      const conn = await openPostgres(as(database!.url, login), { max: 1 });
      try {
        for (const [who, sql] of refusals.filter(([who]) => who === login)) {
          await expect(conn.query(sql), `${who}: ${sql}`).rejects.toThrow(/permission denied|must be owner/);
        }
        // What the services did use, they may.
        await expect(conn.query('select count(*) from api_keys')).resolves.toBeDefined();
      } finally {
        await conn.close();
      }
    }
  }, 30_000);
});

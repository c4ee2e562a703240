import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditService, LEDGER_TABLES, openAudit, SqlLedgerStore, verifyLog } from '@flowloom/audit';
import { InProcessBus } from '@flowloom/bus';
import { loadConfig } from '@flowloom/config';
import { createEvent } from '@flowloom/contracts';
import type { Db } from '@flowloom/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from './cli-support.js';
import { openScratchSchema, type ScratchSchema } from './pg-schema.js';

// `flowloom migrate` on PostgreSQL creates the audit ledger's insert/select-only role, and the audit
// service runs its ledger under it: with every write-once trigger disabled by a superuser, the
// service's own connection still cannot update, delete or truncate a ledger row.

const suffix = randomBytes(4).toString('hex');
const role = `flowloom_audit_writer_e2e_${suffix}`;
const auditor = `flowloom_auditor_e2e_${suffix}`;

const UPDATES: Record<(typeof LEDGER_TABLES)[number], string> = {
  audit_meta: 'update audit_meta set value = value',
  audit_entries: "update audit_entries set entry = 'x' where idx = 1",
  audit_node_tiles: 'update audit_node_tiles set hashes = hashes',
  audit_checkpoints: 'update audit_checkpoints set note = note',
  audit_keys: 'update audit_keys set key_id = key_id',
  audit_prunings: 'update audit_prunings set pruned = pruned',
};

let pg: ScratchSchema;
let admin: Db;
let schema: string;
let url: string;
let dataDir: string;
let audit: AuditService | undefined;
let bus: InProcessBus;

function env(): Record<string, string> {
  return {
    FLOWLOOM_DATABASE_URL: url,
    FLOWLOOM_AUDIT_DB_ROLE: role,
    FLOWLOOM_DATA_DIR: dataDir,
    FLOWLOOM_LOG_LEVEL: 'silent',
  };
}

function requestEvent(i: number) {
  return createEvent(
    'dev.flowloom.gateway.request.failed.v1',
    'flowloom/gateway',
    {
      requestId: `req-${i}`,
      keyId: 'key-1',
      owner: 'ci',
      api: 'openai',
      operation: 'chat',
      model: 'flowloom-local',
      stream: false,
      latencyMs: 3,
      attempts: 1,
      errorCode: 'rate_limited',
      errorMessage: `slow down ${i}`,
      httpStatus: 429,
    },
    'key/key-1',
  );
}

async function appendAndWait(events: ReturnType<typeof requestEvent>[]): Promise<void> {
  const target = (audit?.ledger.size ?? 0) + events.length;
  await bus.publish(events);
  const deadline = Date.now() + 10_000;
  while ((audit?.ledger.size ?? 0) < target) {
    if (Date.now() > deadline) throw new Error(`the ledger holds ${audit?.ledger.size}, expected ${target}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function serviceConnection(): Db {
  const store = audit?.ledger.ledgerStore;
  if (!(store instanceof SqlLedgerStore)) throw new Error('the audit service is not on SqlLedgerStore');
  return store.database;
}

beforeAll(async () => {
  pg = await openScratchSchema('e2e_role');
  ({ admin, schema, url } = pg);
  dataDir = mkdtempSync(join(tmpdir(), 'flowloom-e2e-role-'));
});

afterAll(async () => {
  await audit?.close();
  await bus?.close();
  if (pg) {
    for (const name of [role, auditor]) {
      await admin.exec(`drop owned by ${name}; drop role if exists ${name}`).catch(() => {});
    }
    await pg.drop();
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the audit ledger role on PostgreSQL', () => {
  it('when flowloom migrate runs, then it creates the role, and again it only refreshes it', async () => {
    const first = await runCli(['migrate'], cleanEnv(env()));
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`Audit ledger role ${role}: insert and select only`);
    const again = await runCli(['migrate'], cleanEnv(env()));
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Schema is up to date.');
    const { rows } = await admin.query<{ login: boolean; insert: boolean; update: boolean }>(
      `select r.rolcanlogin as login,
              has_table_privilege($1, '${schema}.audit_entries', 'INSERT') as insert,
              has_table_privilege($1, '${schema}.audit_entries', 'UPDATE') as update
         from pg_roles r where r.rolname = $1`,
      [role],
    );
    expect(rows).toEqual([{ login: false, insert: true, update: false }]);
  });

  it('when the service appends and verifies, then its ledger runs as the role and the log verifies', async () => {
    bus = new InProcessBus();
    audit = await openAudit({
      config: loadConfig({ env: env() }),
      bus,
    });
    await appendAndWait(Array.from({ length: 20 }, (_, i) => requestEvent(i)));
    await audit.ledger.checkpoint();
    const { rows } = await serviceConnection().query<{ role: string }>('select current_user as role');
    expect(rows[0]?.role).toBe(role);
    const report = await verifyLog(audit.source);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, entryCount: audit.ledger.size });
    expect(audit.ledger.size).toBeGreaterThanOrEqual(20);
  });

  it('when a superuser disables every trigger, then the service connection is still refused UPDATE, DELETE and TRUNCATE', async () => {
    for (const table of LEDGER_TABLES)
      await admin.exec(`alter table ${schema}.${table} disable trigger user`);
    try {
      const db = serviceConnection();
      for (const table of LEDGER_TABLES) {
        await expect(db.query(UPDATES[table])).rejects.toThrow(/permission denied/);
        await expect(db.query(`delete from ${table}`)).rejects.toThrow(/permission denied/);
        await expect(db.query(`truncate ${table}`)).rejects.toThrow(/permission denied/);
      }
      // Nor can it put the triggers back or remove them: only the owner may.
      await expect(db.query('alter table audit_entries enable trigger user')).rejects.toThrow(
        /must be owner/,
      );
      await expect(db.query('drop trigger audit_entries_write_once on audit_entries')).rejects.toThrow(
        /must be owner/,
      );
    } finally {
      for (const table of LEDGER_TABLES)
        await admin.exec(`alter table ${schema}.${table} enable trigger user`);
    }
    await appendAndWait([requestEvent(100)]);
    const report = await verifyLog(audit?.source ?? expect.fail('no audit service'));
    expect(report.problems).toEqual([]);
    expect(report.entryCount).toBe(audit?.ledger.size);
  });

  it('when an auditor with a read-only login verifies with --database-url, then it reads on its own connection and the log verifies', async () => {
    await admin.exec(
      `create role ${auditor} login; grant usage on schema ${schema} to ${auditor}; grant select on all tables in schema ${schema} to ${auditor}`,
    );
    const asAuditor = new URL(url);
    asAuditor.username = auditor;
    const result = await runCli(
      ['audit', 'verify', '--database-url', asAuditor.toString()],
      cleanEnv({ FLOWLOOM_AUDIT_DB_ROLE: role, FLOWLOOM_DATA_DIR: dataDir }),
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^OK: \d+ entries/);
  });
});

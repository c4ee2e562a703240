import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditConfig, type Config, loadConfig } from '@flowloom/config';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import type { Db } from '@flowloom/store';
import { afterEach } from 'vitest';
import { FileSigningKeyStore } from '../src/adapters/file-signing-key-store.js';
import { SqlLedgerStore } from '../src/adapters/sql-ledger-store.js';
import { AuditLedger, type LedgerOptions } from '../src/app/ledger.js';
import { type Engine, openTestDatabase, type TestDatabase } from './databases.js';

export {
  ENGINES,
  type Engine,
  openTestDatabase,
  openTestPglite,
  openTestPostgres,
  TEST_PG_URL,
} from './databases.js';

export const COMPLETED = 'dev.flowloom.gateway.request.completed.v1';
export const FAILED = 'dev.flowloom.gateway.request.failed.v1';
export const KEY_CHANGED = 'dev.flowloom.gateway.key.changed.v1';
export const TEST_ORIGIN = 'test.flowloom/audit';

/** A temporary folder removed by the returned function. */
export function tempDir(prefix = 'flowloom-audit-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A request event as the gateway emits it; `i` varies the content. */
export function requestEvent(
  i: number,
  overrides: {
    project?: string;
    job?: string;
    owner?: string;
    keyId?: string;
    at?: Date;
    failed?: boolean;
  } = {},
): CloudEvent {
  const base = {
    requestId: `req-${i}`,
    keyId: overrides.keyId ?? `key-${i % 5}`,
    owner: overrides.owner ?? `user-${i % 3}`,
    project: overrides.project ?? `project-${i % 2}`,
    ...(overrides.job ? { job: overrides.job } : {}),
    api: 'openai',
    operation: 'chat',
    model: 'flowloom-local',
    stream: false,
    latencyMs: 12,
    attempts: 1,
  };
  const data = overrides.failed
    ? { ...base, errorCode: 'rate_limited', errorMessage: `slow down, request ${i}`, httpStatus: 429 }
    : {
        ...base,
        provider: 'local',
        deployment: 'local/flowloom-local',
        providerModel: 'flowloom-local',
        usage: { inputTokens: 10 + (i % 7), outputTokens: 20, cachedInputTokens: 0 },
        costUsd: 0,
      };
  return createEvent(
    overrides.failed ? FAILED : COMPLETED,
    'flowloom/gateway',
    data,
    `key/${base.keyId}`,
    (overrides.at ?? new Date()).getTime(),
  );
}

export interface TestLedger {
  readonly ledger: AuditLedger;
  readonly store: SqlLedgerStore;
  readonly keyFile: string;
  reopen(options?: Partial<LedgerOptions>): Promise<AuditLedger>;
  cleanup(): void;
}

/** A ledger over `db` with its signing key in a temporary folder. */
export async function openTestLedger(db: Db, options: Partial<LedgerOptions> = {}): Promise<TestLedger> {
  const dir = tempDir();
  const keyFile = join(dir.path, 'audit', 'signing-key');
  const store = await SqlLedgerStore.open(db);
  const open = (extra: Partial<LedgerOptions> = {}) =>
    AuditLedger.open({
      store,
      signingKeys: new FileSigningKeyStore(keyFile),
      origin: TEST_ORIGIN,
      ...options,
      ...extra,
    });
  return { ledger: await open(), store, keyFile, reopen: open, cleanup: dir.remove };
}

/**
 * For tests that each open a database of their own: opens it with a ledger on it, and after each
 * test closes that ledger and every one opened with its `reopen` (replicas), then drops the database.
 */
export function ledgerPerTest(): (engine: Engine, options?: Partial<LedgerOptions>) => Promise<TestLedger> {
  let database: TestDatabase | undefined;
  let t: TestLedger | undefined;
  const reopened: AuditLedger[] = [];
  afterEach(async () => {
    for (const ledger of reopened.splice(0)) await ledger.close();
    await t?.ledger.close();
    t?.cleanup();
    await database?.drop();
    t = undefined;
    database = undefined;
  });
  return async (engine, options = {}) => {
    database = await openTestDatabase(engine);
    const opened = await openTestLedger(database.db, options);
    t = {
      ...opened,
      reopen: async (extra) => {
        const ledger = await opened.reopen(extra);
        reopened.push(ledger);
        return ledger;
      },
    };
    return t;
  };
}

/**
 * The config of a standalone audit service in `dataDir` whose admins use `adminKey`, on ports the
 * system picks, with `audit` settings over that.
 */
export function standaloneAuditConfig(
  dataDir: string,
  adminKey: string,
  audit: Partial<AuditConfig> = {},
): Config {
  return loadConfig({
    env: {},
    cwd: dataDir,
    overrides: {
      dataDir,
      adminKey,
      logLevel: 'silent',
      host: '127.0.0.1',
      audit: { httpPort: 0, grpcPort: 0, ...audit },
    },
  });
}

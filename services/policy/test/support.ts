import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessBus } from '@flowloom/bus';
import { loadConfig } from '@flowloom/config';
import type { CloudEvent } from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import { type Db, openPglite, openPostgres } from '@flowloom/store';
import { afterAll, beforeAll } from 'vitest';
import { startPolicyHttp } from '../src/http/server.js';
import { type PolicyService, startPolicyService } from '../src/main.js';

export const TEST_PG_URL =
  process.env.FLOWLOOM_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/flowloom_test';

/** A fresh schema on the test PostgreSQL; fails (never skips) when the server is down. */
export async function testSchema(): Promise<{ open(): Promise<Db>; drop(): Promise<void> }> {
  let admin: Db;
  try {
    admin = await openPostgres(TEST_PG_URL, { max: 1, connectionTimeoutMillis: 3_000 });
  } catch (error) {
    throw new Error(
      `PostgreSQL not reachable at ${TEST_PG_URL}: run npm run engines:up (or set FLOWLOOM_TEST_PG_URL). Cause: ${(error as Error).message}`,
    );
  }
  const schema = `policy_test_${process.pid}_${randomBytes(6).toString('hex')}`;
  await admin.exec(`create schema ${schema}`);
  const url = new URL(TEST_PG_URL);
  url.searchParams.set('options', `-csearch_path=${schema}`);
  const pools: Db[] = [];
  return {
    async open() {
      const db = await openPostgres(url.toString(), { max: 4 });
      pools.push(db);
      return db;
    },
    async drop() {
      await Promise.all(pools.map((p) => p.close()));
      await admin.exec(`drop schema if exists ${schema} cascade`);
      await admin.close();
    },
  };
}

/** A database of either engine for a `describe.each` over both: a fresh schema, or an in-memory PGlite. */
export async function openTestEngine(
  engine: 'postgres' | 'pglite',
): Promise<{ db: Db; close(): Promise<void> }> {
  if (engine === 'pglite') {
    const db = await openPglite();
    return { db, close: () => db.close() };
  }
  const schema = await testSchema();
  return { db: await schema.open(), close: () => schema.drop() };
}

/**
 * Test keys: "Bearer <owner>" is a personal admin key owned by <owner>, created by the bootstrap key;
 * "Bearer <owner>_by_<creator>" one created by <creator>'s key; "Bearer bootstrap" the bootstrap key.
 * The gateway's authorizer reads the same from its key table (tests/e2e drive the real one).
 */
export async function testAuthorizer(headers: Record<string, string | string[] | undefined>) {
  const auth = headers.authorization;
  const name = typeof auth === 'string' ? /^Bearer (\w+)$/.exec(auth)?.[1] : undefined;
  if (!name) throw new AppError('missing_api_key', 'No API key was given.');
  if (name === 'member') throw new AppError('forbidden', 'This endpoint needs an admin key.');
  const bootstrap = { keyId: 'bootstrap-key', owner: 'admin', root: true };
  if (name === 'bootstrap')
    return {
      actor: 'key/bootstrap-key (bootstrap)',
      keyId: bootstrap.keyId,
      owner: 'admin',
      root: true,
      lineage: [],
    };
  const [owner = name, creator] = name.split('_by_');
  const lineage = creator
    ? [{ keyId: `${creator}-key`, owner: creator, root: false }, bootstrap]
    : [bootstrap];
  return { actor: `key/${name}-key (${owner})`, keyId: `${name}-key`, owner, root: false, lineage };
}

export interface TestResponse {
  status: number;
  body: unknown;
  text: string;
}

/** Reads `a.b.0.c` out of a JSON body (tests read a few fields of loosely typed answers). */
export function at<T = unknown>(value: unknown, path: string): T {
  let node = value;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object') throw new Error(`no ${path} in ${JSON.stringify(value)}`);
    node = (node as Record<string, unknown>)[part];
  }
  return node as T;
}

export interface TestPolicyService {
  service: PolicyService;
  bus: InProcessBus;
  url: string;
  /** Events the service published (its outbox flushed first). */
  events(): Promise<CloudEvent[]>;
  call(method: string, path: string, as?: string, body?: unknown): Promise<TestResponse>;
  close(): Promise<void>;
}

/**
 * A policy service on a fresh database of `engine`, started before a file's tests and stopped after
 * them: `db` and `t` are set once it has started.
 */
export function policyServiceOn(
  engine: 'postgres' | 'pglite',
  options: Parameters<typeof startTestPolicyService>[1] = {},
): { db: Db; t: TestPolicyService } {
  const started = {} as { db: Db; t: TestPolicyService };
  let engineDb: Awaited<ReturnType<typeof openTestEngine>> | undefined;
  beforeAll(async () => {
    engineDb = await openTestEngine(engine);
    started.db = engineDb.db;
    started.t = await startTestPolicyService(started.db, options);
  });
  afterAll(async () => {
    await started.t?.close();
    await engineDb?.close();
  });
  return started;
}

export async function startTestPolicyService(
  db: Db,
  options: { grpcPort?: number; pollMs?: number; policy?: Record<string, unknown> } = {},
): Promise<TestPolicyService> {
  const dir = mkdtempSync(join(tmpdir(), 'flowloom-policy-svc-'));
  const config = loadConfig({
    env: {},
    cwd: dir,
    overrides: { logLevel: 'silent', dataDir: dir, ...(options.policy ? { policy: options.policy } : {}) },
  });
  const bus = new InProcessBus();
  const published: CloudEvent[] = [];
  await bus.subscribe('test-recorder', async (event) => {
    published.push(event);
  });
  const service = await startPolicyService({
    config,
    db,
    bus,
    authorizeGateway: testAuthorizer,
    ...(options.grpcPort !== undefined ? { grpcPort: options.grpcPort } : {}),
    ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
  });
  const http = await startPolicyHttp(service.http, testAuthorizer, '127.0.0.1', 0);
  return {
    service,
    bus,
    url: http.url,
    async events() {
      await service.flushEvents();
      return published;
    },
    async call(method, path, as = 'alice', body) {
      const response = await fetch(`${http.url}${path}`, {
        method,
        headers: {
          ...(as ? { authorization: `Bearer ${as}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: response.status, body: parsed, text };
    },
    async close() {
      await http.close();
      await service.close();
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

import { randomBytes } from 'node:crypto';
import { type Db, openPglite, openPostgres } from '@flowloom/store';

/** The PostgreSQL the suites run against; `bash deploy/engines/up.sh postgres` brings it up. */
export const TEST_PG_URL =
  process.env.FLOWLOOM_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/flowloom_test';

export type Engine = 'pglite' | 'postgres';
export const ENGINES: readonly Engine[] = ['pglite', 'postgres'];

export interface TestDatabase {
  readonly kind: Engine;
  readonly db: Db;
  /** postgres:// URL of this schema (PostgreSQL only), e.g. for the CLI's --database-url. */
  readonly url?: string;
  /** The schema (PostgreSQL only). */
  readonly schema?: string;
  /** A superuser connection to the same data, for tampering (PostgreSQL: a second pool). */
  superuser(): Promise<Db>;
  drop(): Promise<void>;
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}

let sharedPglite: Promise<Db> | undefined;
let activePgliteSchema: string | undefined;

/**
 * A fresh schema in one embedded PGlite per test file (creating a PGlite instance costs seconds;
 * a schema costs milliseconds). PGlite has a single connection, so one such database is in use at
 * a time; with `dataDir`, a PGlite of its own on disk.
 */
export async function openTestPglite(dataDir?: string): Promise<TestDatabase> {
  if (dataDir !== undefined) {
    const db = await openPglite(dataDir);
    return { kind: 'pglite', db, superuser: async () => db, drop: () => db.close() };
  }
  if (activePgliteSchema !== undefined) {
    throw new Error(`the shared test PGlite is still used by schema ${activePgliteSchema}: drop it first`);
  }
  sharedPglite ??= openPglite();
  const db = await sharedPglite;
  const schema = `audit_test_${randomBytes(5).toString('hex')}`;
  await db.exec(`create schema ${schema}; set search_path to ${schema}`);
  activePgliteSchema = schema;
  // The shared instance outlives each test database: closing is a no-op, drop removes the schema.
  const view: Db = {
    kind: 'pglite',
    query: (sql, params, options) => db.query(sql, params, options),
    transaction: (fn) => db.transaction(fn),
    exec: (sql) => db.exec(sql),
    close: async () => {},
  };
  return {
    kind: 'pglite',
    db: view,
    schema,
    superuser: async () => view,
    async drop() {
      await db.exec(`set search_path to public; drop schema if exists ${schema} cascade`);
      activePgliteSchema = undefined;
    },
  };
}

/**
 * A fresh schema on the test PostgreSQL, reached through search_path, so test files never see each
 * other's tables. Fails with the fix when the server is down: a missing engine is an error, never a skip.
 */
export async function openTestPostgres(): Promise<TestDatabase> {
  let admin: Db;
  try {
    admin = await openPostgres(TEST_PG_URL, { max: 1, connectionTimeoutMillis: 3_000 });
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${redact(TEST_PG_URL)}: run \`bash deploy/engines/up.sh postgres\` (or set FLOWLOOM_TEST_PG_URL). Cause: ${(error as Error).message}`,
    );
  }
  const schema = `audit_test_${process.pid}_${randomBytes(5).toString('hex')}`;
  await admin.exec(`create schema ${schema}`);
  const url = new URL(TEST_PG_URL);
  url.searchParams.set('options', `-csearch_path=${schema}`);
  const pools: Db[] = [];
  const open = async (): Promise<Db> => {
    const db = await openPostgres(url.toString(), { max: 4 });
    pools.push(db);
    return db;
  };
  const db = await open();
  return {
    kind: 'postgres',
    db,
    url: url.toString(),
    schema,
    superuser: open,
    async drop() {
      await Promise.all(pools.map((p) => p.close()));
      await admin.exec(`drop schema if exists ${schema} cascade`);
      await admin.close();
    },
  };
}

export function openTestDatabase(kind: Engine): Promise<TestDatabase> {
  return kind === 'pglite' ? openTestPglite() : openTestPostgres();
}

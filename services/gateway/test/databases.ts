import { randomBytes } from 'node:crypto';
import { type Db, openPglite, openPostgres } from '@flowloom/store';

/** The PostgreSQL the contract suites run against; deploy/engines/postgres.sh brings it up. */
export const TEST_PG_URL =
  process.env.FLOWLOOM_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/flowloom_test';

/** A database for one test file: its own schema on PostgreSQL, its own instance on PGlite. */
export interface TestDatabase {
  kind: 'pglite' | 'postgres';
  db: Db;
  /**
   * Another independent connection (pool) to the same data, like a second gateway replica. PGlite
   * is one embedded instance, so there it is the same Db.
   */
  openAnother(): Promise<Db>;
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

export async function openTestPglite(): Promise<TestDatabase> {
  const db = await openPglite();
  return {
    kind: 'pglite',
    db,
    openAnother: async () => db,
    drop: () => db.close(),
  };
}

/**
 * Creates a fresh schema on the test PostgreSQL and connects to it through `search_path`, so runs
 * in parallel never see each other's tables. Fails loudly (never skips) when the server is down.
 */
export async function openTestPostgres(): Promise<TestDatabase> {
  let admin: Db;
  try {
    admin = await openPostgres(TEST_PG_URL, { max: 1, connectionTimeoutMillis: 3_000 });
  } catch (error) {
    throw new Error(
      `PostgreSQL not reachable at ${redact(TEST_PG_URL)}: run npm run engines:up (or set FLOWLOOM_TEST_PG_URL). Cause: ${(error as Error).message}`,
    );
  }
  const schema = `gw_test_${process.pid}_${randomBytes(6).toString('hex')}`;
  await admin.exec(`create schema ${schema}`);
  const url = new URL(TEST_PG_URL);
  url.searchParams.set('options', `-csearch_path=${schema}`);
  const pools: Db[] = [];
  const open = async (): Promise<Db> => {
    const db = await openPostgres(url.toString(), { max: 5 });
    pools.push(db);
    return db;
  };
  const db = await open();
  return {
    kind: 'postgres',
    db,
    openAnother: open,
    async drop() {
      await Promise.all(pools.map((p) => p.close()));
      await admin.exec(`drop schema if exists ${schema} cascade`);
      await admin.close();
    },
  };
}

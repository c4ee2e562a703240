import { randomBytes } from 'node:crypto';
import { type Db, openPostgres } from '@flowloom/store';

/** The PostgreSQL the end-to-end tests run against; `npm run engines:up` brings it up. */
export const PG_URL = process.env.FLOWLOOM_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/flowloom_test';

export interface ScratchSchema {
  /** A superuser connection (the test's own, for setup and tampering). */
  readonly admin: Db;
  readonly schema: string;
  /** PG_URL with its search_path set to the schema: what the platform under test is given. */
  readonly url: string;
  /** Drops the schema and closes the admin connection. */
  drop(): Promise<void>;
}

/**
 * A fresh schema on the test PostgreSQL, so test files never see each other's tables. A missing
 * server is an error that says how to start it, never a skip.
 */
export async function openScratchSchema(prefix: string): Promise<ScratchSchema> {
  let admin: Db;
  try {
    admin = await openPostgres(PG_URL, { max: 1, connectionTimeoutMillis: 3_000 });
  } catch (error) {
    throw new Error(
      `PostgreSQL not reachable at ${PG_URL}: run npm run engines:up (${(error as Error).message})`,
    );
  }
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`;
  await admin.exec(`create schema ${schema}`);
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-csearch_path=${schema}`);
  return {
    admin,
    schema,
    url: url.toString(),
    async drop() {
      await admin.exec(`drop schema if exists ${schema} cascade`);
      await admin.close();
    },
  };
}

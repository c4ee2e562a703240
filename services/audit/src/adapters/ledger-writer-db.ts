import { type Db, openPostgres } from '@flowloom/store';
import { INDEX_TABLES, LEDGER_TABLES, ledgerWriterRoleSql } from './migrations.js';
import { SqlLedgerStore } from './sql-ledger-store.js';

/** `audit.dbRole` value that turns the role off (the ledger then runs with the connection's own privileges). */
export const NO_WRITER_ROLE = 'off';

export interface LedgerWriterSettings {
  /** The server the ledger lives on (the URL `db` was opened from). */
  readonly databaseUrl: string;
  /** The insert/select-only role (audit.dbRole). */
  readonly role: string;
}

/** `url` with `-c role=…` added to its startup options, so each connection runs as the role from its first statement. */
export function withRole(url: string, role: string): string {
  const parsed = new URL(url);
  const options = parsed.searchParams.get('options');
  parsed.searchParams.set('options', `${options ? `${options} ` : ''}-crole=${role}`);
  return parsed.toString();
}

/** Creates or refreshes the writer role on `db` (its owner's connection); `flowloom migrate` runs it. */
export async function prepareLedgerWriterRole(
  db: Db,
  role: string,
  members: readonly string[] = [],
): Promise<void> {
  await db.exec(ledgerWriterRoleSql(role, members));
}

async function roleIsReady(db: Db, role: string): Promise<boolean> {
  const { rows } = await db.query<{ ready: boolean | null }>(
    `select exists (select 1 from pg_roles where rolname = $1)
        and (select bool_and(has_table_privilege($1, t, 'INSERT')) from unnest($2::text[]) as t)
        and (select bool_and(has_table_privilege($1, t, 'UPDATE')) from unnest($3::text[]) as t)
        and pg_has_role(current_user, $1, 'MEMBER') as ready`,
    // A role from before a derived table was added lacks it: refreshed here like a missing role.
    [role, [...LEDGER_TABLES], [...INDEX_TABLES]],
  );
  return rows[0]?.ready === true;
}

/**
 * The connection the ledger runs on. `db` (the service's own privileges) migrates the ledger if it
 * needs it; on PostgreSQL with a writer role, the ledger then gets a pool of its own with that role
 * set, so it can append and read but never change or remove a row. The role is created here when a
 * database lacks it (a service started before anyone ran `flowloom migrate`).
 */
export async function openLedgerConnection(
  db: Db,
  writer: LedgerWriterSettings | undefined,
): Promise<{ readonly db: Db; close(): Promise<void> }> {
  await SqlLedgerStore.open(db);
  if (db.kind !== 'postgres' || !writer || writer.role === NO_WRITER_ROLE) {
    return { db, close: async () => {} };
  }
  const { role } = writer;
  if (!(await roleIsReady(db, role))) {
    try {
      await prepareLedgerWriterRole(db, role);
    } catch (error) {
      throw new Error(
        `the audit ledger runs as the PostgreSQL role "${role}" (audit.dbRole), which this database does not grant yet, and this user could not create it (${(error as Error).message}). Fix: run \`flowloom migrate\` as the schema owner with CREATEROLE, or set FLOWLOOM_AUDIT_DB_ROLE=off to rely on the triggers alone.`,
      );
    }
  }
  const writerDb = await openPostgres(withRole(writer.databaseUrl, role), { max: 5 });
  const { rows } = await writerDb.query<{ user: string }>('select current_user as user');
  if (rows[0]?.user !== role) {
    await writerDb.close();
    throw new Error(
      `the audit ledger connection runs as "${rows[0]?.user}", not as the role "${role}" (audit.dbRole). Fix: check that the database URL's options do not set another role.`,
    );
  }
  return { db: writerDb, close: () => writerDb.close() };
}

import type { Db } from './db.js';

export interface Migration {
  /** Unique and ordered, e.g. `gateway/001_keys`. */
  id: string;
  sql: string;
}

/**
 * Applies the migrations not yet recorded, each in its own transaction, in the given order.
 * An advisory lock keeps two replicas starting at once from applying the same migration twice.
 */
export async function migrate(db: Db, migrations: readonly Migration[]): Promise<string[]> {
  await db.exec(
    'create table if not exists schema_migrations (id text primary key, applied_at timestamptz not null default now())',
  );
  const applied: string[] = [];
  await db.transaction(async (tx) => {
    await tx.query('select pg_advisory_xact_lock(7411)');
    const done = new Set(
      (await tx.query<{ id: string }>('select id from schema_migrations')).rows.map((r) => r.id),
    );
    for (const migration of migrations) {
      if (done.has(migration.id)) continue;
      for (const statement of splitStatements(migration.sql)) await tx.query(statement);
      await tx.query('insert into schema_migrations (id) values ($1)', [migration.id]);
      applied.push(migration.id);
    }
  });
  return applied;
}

/**
 * Applies `migrations` unless every one is recorded already, so a service whose login may only read
 * and write (not create tables) starts on a database someone else prepared (`flowloom migrate`).
 */
export async function migrateUnlessApplied(db: Db, migrations: readonly Migration[]): Promise<void> {
  let applied = new Set<string>();
  try {
    const rows = await db.query<{ id: string }>('select id from schema_migrations');
    applied = new Set(rows.rows.map((r) => r.id));
  } catch {
    // no schema_migrations yet
  }
  if (!migrations.every((m) => applied.has(m.id))) await migrate(db, migrations);
}

/** Splits on semicolons that end a line, outside `$$` bodies (enough for our own migrations). */
function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let current = '';
  let inDollar = false;
  for (const line of sql.split('\n')) {
    const dollars = line.split('$$').length - 1;
    if (dollars % 2 === 1) inDollar = !inDollar;
    current += `${line}\n`;
    if (!inDollar && line.trimEnd().endsWith(';')) {
      if (current.trim() !== ';') out.push(current.trim());
      current = '';
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

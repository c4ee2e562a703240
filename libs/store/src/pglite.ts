import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type { Db, QueryResult, Row, SqlParam } from './db.js';

/** Opens an embedded PGlite database in `dataDir` (created if missing), or in memory when omitted. */
export async function openPglite(dataDir?: string): Promise<Db> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const pg = dataDir ? new PGlite(dataDir) : new PGlite();
  await pg.waitReady;
  const query = async <R extends Row>(sql: string, params?: readonly SqlParam[]): Promise<QueryResult<R>> => {
    const result = await pg.query<R>(sql, params ? [...params] : undefined);
    return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
  };
  return {
    kind: 'pglite',
    query,
    async transaction(fn) {
      return pg.transaction(async (tx) =>
        fn({
          async query<R extends Row>(sql: string, params?: readonly SqlParam[]) {
            const result = await tx.query<R>(sql, params ? [...params] : undefined);
            return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
          },
        }),
      );
    },
    async exec(sql) {
      await pg.exec(sql);
    },
    async close() {
      await pg.close();
    },
  };
}

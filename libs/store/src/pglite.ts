import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import type { Db, QueryResult, Row, SqlParam } from './db.js';

/**
 * An embedded database serves one process: small buffers keep the platform's idle memory near
 * 250 MB instead of ~380 MB with PostgreSQL's defaults (measured on the same data).
 */
const EMBEDDED_SETTINGS = [
  'shared_buffers=16MB',
  'work_mem=2MB',
  'maintenance_work_mem=16MB',
  'wal_buffers=1MB',
];

async function initInChild(dataDir: string): Promise<void> {
  const script = fileURLToPath(new URL('./init-pglite.mjs', import.meta.url));
  try {
    await promisify(execFile)(process.execPath, [script, dataDir, JSON.stringify(EMBEDDED_SETTINGS)], {
      timeout: 300_000,
    });
  } catch (error) {
    throw new Error(`Could not create the embedded database in ${dataDir}: ${(error as Error).message}`);
  }
}

/** Opens an embedded PGlite database in `dataDir` (created if missing), or in memory when omitted. */
export async function openPglite(dataDir?: string): Promise<Db> {
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await initInChild(dataDir);
  }
  const pg = new PGlite({ ...(dataDir ? { dataDir } : {}), postgresqlconf: EMBEDDED_SETTINGS });
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

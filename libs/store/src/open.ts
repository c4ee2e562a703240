import type { Db } from './db.js';
import { type EmbeddedDbPurpose, openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';

export interface OpenDbOptions {
  /** A `postgres://` URL selects a real server; otherwise PGlite is used. */
  databaseUrl?: string | undefined;
  /** Folder for the embedded database; in memory when omitted. */
  dataDir?: string | undefined;
  /** For the embedded database: a platform that answers requests (default) or a one-job tool. */
  purpose?: EmbeddedDbPurpose | undefined;
}

export async function openDb(options: OpenDbOptions): Promise<Db> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl);
  return openPglite(options.dataDir, options.purpose);
}

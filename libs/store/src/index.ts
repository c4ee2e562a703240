export type { Db, Queryable, QueryResult, Row, SqlParam, StatementOptions } from './db.js';
export { type Migration, migrate, migrateUnlessApplied } from './migrate.js';
export { type OpenDbOptions, openDb } from './open.js';
export { type EmbeddedDbMemory, type EmbeddedDbPurpose, embeddedDbMemory, openPglite } from './pglite.js';
export { openPostgres } from './postgres.js';
export { classifyDbError, DatabaseUnavailableError, unavailableReason } from './unavailable.js';

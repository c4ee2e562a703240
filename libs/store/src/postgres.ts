import type pg from 'pg';
import type { Db, QueryResult, Row, SqlParam, StatementOptions } from './db.js';
import { classifyDbError } from './unavailable.js';

let loaded: Promise<typeof pg> | undefined;
/** pg is loaded on first use: a process on embedded storage never holds it in memory. */
function loadPg(): Promise<typeof pg> {
  loaded ??= import('pg').then(({ default: pg }) => {
    // Return int8 and numeric as numbers: counters and token totals here stay far below 2^53.
    pg.types.setTypeParser(20, (value) => Number(value));
    pg.types.setTypeParser(1700, (value) => Number(value));
    return pg;
  });
  return loaded;
}

export interface PostgresOptions {
  max?: number;
  /** How long to wait for a connection before failing, so an outage surfaces instead of hanging. */
  connectionTimeoutMillis?: number;
}

/** Opens a pool on a real PostgreSQL server and checks that it answers. */
export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<Db> {
  const pg = await loadPg();
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5_000,
  });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  try {
    await pool.query('select 1');
  } catch (error) {
    await pool.end();
    throw new Error(
      `Cannot reach PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}. Is it running? (npm run engines:up)`,
    );
  }
  const query = async <R extends Row>(
    sql: string,
    params?: readonly SqlParam[],
    options?: StatementOptions,
  ): Promise<QueryResult<R>> => {
    const result = await pool.query<R>(statement(sql, params, options)).catch(rethrowClassified);
    return { rows: result.rows, rowCount: result.rowCount ?? result.rows.length };
  };
  return {
    kind: 'postgres',
    query,
    async transaction(fn) {
      const client = await pool.connect().catch(rethrowClassified);
      // The pool stops watching a client it hands out: losing the server while this one is held
      // between queries (a relay publishing inside its transaction) must not crash the process.
      client.on('error', ignore);
      let broken: unknown;
      try {
        await client.query('begin');
        const result = await fn({
          async query<R extends Row>(sql: string, params?: readonly SqlParam[], options?: StatementOptions) {
            const r = await client.query<R>(statement(sql, params, options));
            return { rows: r.rows, rowCount: r.rowCount ?? r.rows.length };
          },
        });
        await client.query('commit');
        return result;
      } catch (error) {
        await client.query('rollback').catch((rollbackError: unknown) => {
          broken = rollbackError;
        });
        throw classifyDbError(error);
      } finally {
        client.off('error', ignore);
        // A client that could not even roll back has lost its server: destroy it, never reuse it.
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    async exec(sql) {
      await pool.query(sql).catch(rethrowClassified);
    },
    async close() {
      await pool.end();
    },
  };
}

function ignore(): void {}

function statement(
  sql: string,
  params: readonly SqlParam[] | undefined,
  options: StatementOptions | undefined,
): pg.QueryConfig<SqlParam[]> {
  return { text: sql, values: params ? [...params] : undefined, name: options?.name };
}

/** A lost or refused connection becomes DatabaseUnavailableError (503, retryable); others stay as they are. */
function rethrowClassified(error: unknown): never {
  throw classifyDbError(error);
}

/** Hides the password of a connection URL in messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}

/**
 * One database interface over PostgreSQL (`pg`) and PGlite (WASM Postgres), so services write
 * their SQL once and run it embedded or on a real server. Parameters use `$1` placeholders.
 */
export type SqlParam = string | number | boolean | null | Date | Uint8Array | string[] | number[];
export type Row = Record<string, unknown>;

export interface QueryResult<R extends Row = Row> {
  rows: R[];
  rowCount: number;
}

export interface StatementOptions {
  /**
   * Prepares the statement once per connection under this name (PostgreSQL), so later runs skip
   * parsing and planning: for small hot statements whose planning costs as much as running them.
   * One name, one SQL text. PGlite ignores it (it has no statements that outlive a call).
   */
  readonly name?: string;
}

export interface Queryable {
  query<R extends Row = Row>(
    sql: string,
    params?: readonly SqlParam[],
    options?: StatementOptions,
  ): Promise<QueryResult<R>>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction on one connection; it commits when `fn` resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs several statements separated by semicolons, without parameters (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

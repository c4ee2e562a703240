import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from './db.js';
import { embeddedDbMemory, openPglite } from './pglite.js';

// The embedded database answers from a worker thread: what crosses the thread boundary (values,
// errors, transactions) must behave exactly as an in-thread PGlite does.
describe('embedded database on its worker thread', () => {
  let db: Db;
  beforeAll(async () => {
    db = await openPglite();
    await db.exec('create table t (id int primary key, at timestamptz, bytes bytea, tags text[])');
  });
  afterAll(async () => {
    await db.close();
  });

  // Field 19 of a thread's stat line (after the parenthesised name) is its nice value.
  const niceValues = (): number[] =>
    readdirSync('/proc/self/task').map((task) =>
      Number(readFileSync(`/proc/self/task/${task}/stat`, 'utf8').split(') ')[1]?.split(' ')[16]),
    );
  const lowered = (): number => {
    const main = Number(readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]?.split(' ')[16]);
    return niceValues().filter((nice) => nice === Math.min(19, main + 5)).length;
  };

  it.runIf(existsSync('/proc/thread-self'))(
    'when it runs on Linux, then its thread has a lower CPU priority than the thread that serves requests',
    () => {
      expect(lowered()).toBe(1);
    },
  );

  it.runIf(existsSync('/proc/thread-self'))(
    'when a tool opens it for one job, then its thread keeps the full priority',
    async () => {
      const threads = niceValues().length;
      const tool = await openPglite(undefined, 'tool');
      try {
        expect(niceValues().length).toBeGreaterThan(threads);
        expect(lowered()).toBe(1);
        expect(await tool.query('select 1 as one')).toMatchObject({ rows: [{ one: 1 }] });
      } finally {
        await tool.close();
      }
    },
  );

  it('when values of every parameter type are written, then they read back unchanged', async () => {
    const at = new Date('2026-11-22T06:00:00.000Z');
    await db.query('insert into t values ($1, $2, $3, $4)', [1, at, new Uint8Array([0, 1, 255]), ['a', 'b']]);
    const { rows, rowCount } = await db.query('select * from t where id = $1', [1]);
    expect(rowCount).toBe(1);
    expect(rows[0]).toEqual({ id: 1, at, bytes: new Uint8Array([0, 1, 255]), tags: ['a', 'b'] });
  });

  it('when long text, varchar and json parameters are bound, then the server sees exactly that text', async () => {
    // Long strings travel as UTF-8 bytes (see pglite-worker.mjs): multi-byte characters, a lone
    // surrogate (replaced as PostgreSQL's own text input would get it) and escapes must survive.
    const text = `${'é€😀 "q" \\ x'.repeat(200)}\ud800end`;
    const json = JSON.stringify({
      text: text.slice(0, -4),
      list: Array.from({ length: 100 }, (_, i) => `v${i}`),
    });
    const { rows } = await db.query<{ t: string; n: number; v: string; j: string; k: string }>(
      `select $1::text as t, char_length($1::text) as n, $2::varchar as v, $3::json::text as j,
              $3::json->'list'->>99 as k`,
      [text, text, json],
    );
    const expected = text.replace('\ud800', '\ufffd');
    expect(rows[0]).toEqual({ t: expected, n: [...expected].length, v: expected, j: json, k: 'v99' });
    const short = await db.query<{ t: string }>('select $1::text as t', ['short é']);
    expect(short.rows[0]?.t).toBe('short é');
  });

  it('when a statement fails, then the error keeps its message and SQLSTATE code', async () => {
    const failure = await db.query('insert into t (id) values (1)').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).toMatchObject({ code: '23505', message: expect.stringContaining('duplicate key') });
  });

  it('when a transaction throws, then none of its writes remain and the error reaches the caller', async () => {
    const failure = await db
      .transaction(async (tx) => {
        await tx.query('insert into t (id) values (2)');
        throw new Error('changed my mind');
      })
      .catch((error: unknown) => error);
    expect((failure as Error).message).toBe('changed my mind');
    expect((await db.query('select id from t where id = 2')).rowCount).toBe(0);
  });

  it('when a query arrives during a transaction, then it waits and sees only committed rows', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const writing = db.transaction(async (tx) => {
      await tx.query('insert into t (id) values (3)');
      await held;
      return 'committed';
    });
    const reading = db.query<{ n: number }>('select count(*)::int as n from t where id = 3');
    release();
    expect(await writing).toBe('committed');
    expect((await reading).rows[0]?.n).toBe(1);
  });

  it('when the database is closed, then later calls fail with a clear error', async () => {
    const other = await openPglite();
    await other.close();
    await expect(other.query('select 1')).rejects.toThrow(/embedded database is closed/);
  });

  it('when its memory is asked for, then it reports the WASM memory and its thread’s own heap', async () => {
    const memory = await embeddedDbMemory(db);
    // PostgreSQL's WASM memory starts at 128 MB (PGlite's initial size) and grows in 64 KiB pages.
    expect(memory?.wasm).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect((memory?.wasm ?? 1) % 65536).toBe(0);
    expect(memory?.heapUsed).toBeGreaterThan(0);
    expect(memory?.heapTotal).toBeGreaterThanOrEqual(memory?.heapUsed ?? Number.POSITIVE_INFINITY);
  });

  it('when a database is not the embedded one, then it has no embedded memory to report', () => {
    const other: Db = { ...db };
    expect(embeddedDbMemory(other)).toBeUndefined();
  });
});

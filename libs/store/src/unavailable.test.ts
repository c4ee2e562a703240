import { connect, createServer, type Socket } from 'node:net';
import { errorHeaders, grpcStatusOf, httpStatusOf, toOpenAIError } from '@flowloom/errors';
import { describe, expect, it } from 'vitest';
import { openPostgres } from './postgres.js';
import { classifyDbError, DatabaseUnavailableError, unavailableReason } from './unavailable.js';

const PG_URL = process.env.FLOWLOOM_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/flowloom_test';

const withCode = (message: string, code: string): Error => Object.assign(new Error(message), { code });

describe('database errors', () => {
  it('when the server refuses, drops or ends a connection, then it is a retryable 503 / UNAVAILABLE naming no host', () => {
    const cases: Array<[Error, string]> = [
      [withCode('connect ECONNREFUSED 10.1.2.3:5432', 'ECONNREFUSED'), 'connection refused'],
      [
        withCode('terminating connection due to administrator command', '57P01'),
        'the server is shutting down',
      ],
      [
        withCode('the database system is starting up', '57P03'),
        'the server is not accepting connections yet',
      ],
      [withCode('connection failure', '08006'), 'connection failure'],
      [new Error('Connection terminated unexpectedly'), 'connection terminated'],
      [new Error('timeout exceeded when trying to connect'), 'connection timed out'],
      [new Error('Client has encountered a connection error and is not queryable'), 'connection terminated'],
      [
        new AggregateError([withCode('a', 'ECONNREFUSED'), withCode('b', 'ECONNREFUSED')], 'all failed'),
        'connection refused',
      ],
    ];
    for (const [error, reason] of cases) {
      const classified = classifyDbError(error);
      expect(classified).toBeInstanceOf(DatabaseUnavailableError);
      expect(classified).toMatchObject({ reason, cause: error });
      expect(httpStatusOf(classified)).toBe(503);
      expect(grpcStatusOf(classified)).toBe(14);
      expect(errorHeaders(classified)).toEqual({ 'retry-after': '2' });
      const body = toOpenAIError(classified);
      expect(body.error).toMatchObject({ code: 'unavailable', type: 'api_error' });
      expect(body.error.message).toMatch(/database is unavailable .* can be retried/);
      expect(body.error.message).not.toContain('10.1.2.3');
    }
  });

  it('when a statement fails on its own merits, then its error is left as it is', () => {
    const duplicate = withCode('duplicate key value violates unique constraint', '23505');
    expect(classifyDbError(duplicate)).toBe(duplicate);
    expect(unavailableReason(new Error('syntax error at or near "selec"'))).toBeUndefined();
    expect(unavailableReason('ECONNREFUSED')).toBeUndefined();
  });

  it('when PostgreSQL ends the session in a transaction, then the transaction fails as unavailable and the pool recovers', async () => {
    const db = await openPostgres(PG_URL, { max: 1 });
    try {
      const failure = await db
        .transaction((tx) => tx.query('select pg_terminate_backend(pg_backend_pid())'))
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(DatabaseUnavailableError);
      expect(httpStatusOf(failure)).toBe(503);
      const { rows } = await db.query<{ one: number }>('select 1 as one');
      expect(rows).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });

  it('when the way to the server is cut and closed, then queries fail as unavailable and succeed again once it is back', async () => {
    const target = new URL(PG_URL);
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
    });
    const listen = (port: number) =>
      new Promise<number>((resolve) =>
        proxy.listen(port, '127.0.0.1', () => {
          const address = proxy.address();
          resolve(typeof address === 'object' && address ? address.port : 0);
        }),
      );
    const port = await listen(0);
    const through = new URL(PG_URL);
    through.hostname = '127.0.0.1';
    through.port = String(port);
    const db = await openPostgres(through.toString(), { max: 1 });
    try {
      await new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      // The pool may notice the cut before or at the first query; a new connection is refused.
      for (const expected of [/connection (terminated|reset|refused)/, /connection refused/]) {
        const failure = await db.query('select 1').catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(DatabaseUnavailableError);
        expect((failure as DatabaseUnavailableError).reason).toMatch(expected);
      }
      await listen(port);
      expect((await db.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
      await new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    }
  });
});

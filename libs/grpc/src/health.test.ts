import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { GrpcHealth, type HealthOptions } from './health.js';
import { listen, loadService } from './proto.js';

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
interface HealthClient extends grpc.Client {
  check(
    request: { service: string },
    callback: (error: grpc.ServiceError | null, response?: { status: Status }) => void,
  ): void;
  watch(request: { service: string }): grpc.ClientReadableStream<{ status: Status }>;
}

const running: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of running.splice(0)) await stop();
});

async function serve(options: HealthOptions): Promise<{ health: GrpcHealth; client: HealthClient }> {
  const server = new grpc.Server();
  const health = new GrpcHealth(options);
  health.addTo(server);
  const port = await listen(server, '127.0.0.1', 0);
  const Health = loadService('grpc/health/v1/health.proto', ['grpc', 'health', 'v1', 'Health']);
  const client = new Health(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  ) as unknown as HealthClient;
  running.push(async () => {
    client.close();
    health.shutdown();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });
  return { health, client };
}

function check(client: HealthClient, service: string): Promise<Status | grpc.status> {
  return new Promise((resolve) =>
    client.check({ service }, (error, response) => resolve(error ? error.code : response!.status)),
  );
}

/** Collects a Watch stream's statuses and how it ended. */
function watch(client: HealthClient, service: string) {
  const seen: Status[] = [];
  const stream = client.watch({ service });
  let ended = false;
  stream.on('data', (m: { status: Status }) => seen.push(m.status));
  stream.on('end', () => {
    ended = true;
  });
  stream.on('error', () => {
    ended = true;
  });
  return { seen, stream, ended: () => ended };
}

async function until(condition: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('GrpcHealth', () => {
  it('when a service check fails, throws or hangs, then that service and the server are NOT_SERVING, others SERVING', async () => {
    let db = true;
    const { client } = await serve({
      services: {
        'a.v1.Plain': null,
        'a.v1.Db': () => db,
        'a.v1.Throws': () => {
          throw new Error('store down');
        },
        'a.v1.Hangs': () => new Promise<boolean>(() => {}),
      },
      timeoutMs: 100,
    });
    expect(await check(client, 'a.v1.Plain')).toBe('SERVING');
    expect(await check(client, 'a.v1.Db')).toBe('SERVING');
    expect(await check(client, 'a.v1.Throws')).toBe('NOT_SERVING');
    expect(await check(client, 'a.v1.Hangs')).toBe('NOT_SERVING');
    expect(await check(client, '')).toBe('NOT_SERVING');
    db = false;
    expect(await check(client, 'a.v1.Db')).toBe('NOT_SERVING');
    expect(await check(client, 'a.v1.Nope')).toBe(grpc.status.NOT_FOUND);
  });

  it('when no server check is given, then "" serves exactly while every service does; a server check overrides that', async () => {
    let db = true;
    const plain = await serve({ services: { 'a.v1.Db': () => db, 'a.v1.Plain': null } });
    expect(await check(plain.client, '')).toBe('SERVING');
    db = false;
    expect(await check(plain.client, '')).toBe('NOT_SERVING');
    const own = await serve({ services: { 'a.v1.Db': () => false }, server: () => true });
    expect(await check(own.client, '')).toBe('SERVING');
  });

  it('when watched, then the status comes at once and again on each change only; SERVICE_UNKNOWN for an unknown service', async () => {
    let db = true;
    const { client } = await serve({ services: { 'a.v1.Db': () => db }, watchIntervalMs: 20 });
    const w = watch(client, 'a.v1.Db');
    const unknown = watch(client, 'a.v1.Nope');
    await until(() => w.seen.length === 1 && unknown.seen.length === 1);
    expect(w.seen).toEqual(['SERVING']);
    expect(unknown.seen).toEqual(['SERVICE_UNKNOWN']);
    await new Promise((r) => setTimeout(r, 100));
    expect(w.seen).toEqual(['SERVING']);
    db = false;
    await until(() => w.seen.length === 2);
    db = true;
    await until(() => w.seen.length === 3);
    expect(w.seen).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
    expect(w.ended()).toBe(false);
    w.stream.cancel();
    unknown.stream.cancel();
  });

  it('when shut down, then watchers get NOT_SERVING and their streams end, and Check answers NOT_SERVING', async () => {
    const { health, client } = await serve({ services: { 'a.v1.Db': () => true } });
    const w = watch(client, '');
    await until(() => w.seen.length === 1);
    health.shutdown();
    await until(() => w.ended());
    expect(w.seen).toEqual(['SERVING', 'NOT_SERVING']);
    expect(await check(client, 'a.v1.Db')).toBe('NOT_SERVING');
    expect(await check(client, 'a.v1.Nope')).toBe(grpc.status.NOT_FOUND);
    const late = watch(client, 'a.v1.Db');
    await until(() => late.ended());
    expect(late.seen).toEqual(['NOT_SERVING']);
  });

  it('when many callers check at once, then the check runs once for them', async () => {
    let runs = 0;
    const { client } = await serve({
      services: {
        'a.v1.Db': async () => {
          runs++;
          await new Promise((r) => setTimeout(r, 300));
          return true;
        },
      },
    });
    const results = await Promise.all(Array.from({ length: 10 }, () => check(client, 'a.v1.Db')));
    expect(results.every((s) => s === 'SERVING')).toBe(true);
    expect(runs).toBe(1);
  });
});

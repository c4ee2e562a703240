import type { Db } from '@flowloom/store';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HealthStatus, healthClient } from './grpc-support.js';
import { startTestPolicyService, type TestPolicyService, testSchema } from './support.js';

let schema: Awaited<ReturnType<typeof testSchema>>;
let db: Db;
let policy: TestPolicyService;
let client: ReturnType<typeof healthClient>;

beforeAll(async () => {
  schema = await testSchema();
  db = await schema.open();
  policy = await startTestPolicyService(db, { grpcPort: 0 });
  client = healthClient(policy.service.grpcAddress!);
});

afterAll(async () => {
  client?.close();
  await policy?.close();
  await schema?.drop();
});

function check(service: string): Promise<{ status?: HealthStatus; error?: grpc.ServiceError }> {
  return new Promise((resolve) =>
    client.check({ service }, { deadline: Date.now() + 5_000 }, (error, response) =>
      resolve(error ? { error } : { status: response!.status }),
    ),
  );
}

describe('grpc.health.v1 on the policy service', () => {
  it('when Check asks for the server ("") or one of its services, then each is SERVING', async () => {
    expect(await check('')).toEqual({ status: 'SERVING' });
    expect(await check('flowloom.policy.v1.PolicyDistribution')).toEqual({ status: 'SERVING' });
    expect(await check('flowloom.policy.v1.PolicyAdmin')).toEqual({ status: 'SERVING' });
  });

  it('when Check asks for a service the server does not host, then it fails with NOT_FOUND', async () => {
    const { error } = await check('flowloom.gateway.v1.Gateway');
    expect(error?.code).toBe(grpc.status.NOT_FOUND);
    expect(error?.details).toContain('flowloom.gateway.v1.Gateway');
  });

  it('when Watch asks for the server, then the current status arrives at once', async () => {
    const stream = client.watch({ service: '' });
    const first = await new Promise<HealthStatus>((resolve, reject) => {
      stream.once('data', (m: { status: HealthStatus }) => resolve(m.status));
      stream.once('error', reject);
    });
    stream.cancel();
    expect(first).toBe('SERVING');
  });

  it('when the database is unavailable, then the server and the admin API are NOT_SERVING while bundle distribution (served from memory) stays SERVING', async () => {
    const other = await schema.open();
    const second = await startTestPolicyService(other, { grpcPort: 0 });
    const secondClient = healthClient(second.service.grpcAddress!);
    try {
      const ask = (service: string) =>
        new Promise<HealthStatus | undefined>((resolve) =>
          secondClient.check({ service }, (error, response) => resolve(error ? undefined : response?.status)),
        );
      expect(await ask('')).toBe('SERVING');
      // The service's pool ends: every query fails, as with the database down (dropping the schema
      // later closes the pools it opened, this one no more).
      await other.close();
      other.close = async () => {};
      expect(await ask('')).toBe('NOT_SERVING');
      expect(await ask('flowloom.policy.v1.PolicyAdmin')).toBe('NOT_SERVING');
      expect(await ask('flowloom.policy.v1.PolicyDistribution')).toBe('SERVING');
    } finally {
      secondClient.close();
      await second.close().catch(() => {});
    }
  });

  it('when the service closes, then an open Watch hears NOT_SERVING and ends, so shutdown does not wait for it', async () => {
    const third = await startTestPolicyService(await schema.open(), { grpcPort: 0 });
    const thirdClient = healthClient(third.service.grpcAddress!);
    const seen: HealthStatus[] = [];
    const stream = thirdClient.watch({ service: '' });
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('error', () => resolve());
    });
    stream.on('data', (m: { status: HealthStatus }) => seen.push(m.status));
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    await third.close();
    await ended;
    thirdClient.close();
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
    expect(Date.now() - started).toBeLessThan(4_000);
  });
});

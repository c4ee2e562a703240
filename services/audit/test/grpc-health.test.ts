import { loadService } from '@flowloom/grpc';
import { openPostgres } from '@flowloom/store';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StandaloneAudit, startAudit } from '../src/main.js';
import type { TestDatabase } from './databases.js';
import { openTestDatabase, standaloneAuditConfig, tempDir } from './support.js';

// grpc.health.v1 on the standalone audit service, asked as a load balancer or kubelet asks it, on
// the real PostgreSQL: SERVING while the ledger's database answers, NOT_SERVING once it does not.

const ADMIN = 'flk_audit-health-admin-key-0123456789abcdef';
const AUDIT = 'flowloom.audit.v1.Audit';

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' | 'UNKNOWN';
type HealthClient = grpc.Client & {
  check(
    request: { service: string },
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: { status: Status }) => void,
  ): void;
};

function healthOf(address: string): {
  client: HealthClient;
  check(service: string): Promise<Status | grpc.status>;
} {
  const Health = loadService('grpc/health/v1/health.proto', ['grpc', 'health', 'v1', 'Health']);
  const client = new Health(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
  const check = (service: string) =>
    new Promise<Status | grpc.status>((resolve) =>
      client.check({ service }, { deadline: Date.now() + 5_000 }, (error, response) =>
        resolve(error ? error.code : (response?.status ?? 'UNKNOWN')),
      ),
    );
  return { client, check };
}

describe('grpc.health.v1 on the audit service', () => {
  let database: TestDatabase;
  const dirs = [tempDir(), tempDir()];
  let audit: StandaloneAudit;

  beforeAll(async () => {
    database = await openTestDatabase('postgres');
    audit = await startAudit({ config: standaloneAuditConfig(dirs[0]!.path, ADMIN), db: database.db });
  });
  afterAll(async () => {
    await audit?.close();
    await database?.drop();
    for (const dir of dirs) dir.remove();
  });

  it('when Check asks for the server ("") or the Audit service, then each is SERVING; another service is NOT_FOUND', async () => {
    const { client, check } = healthOf(audit.grpcAddress);
    try {
      expect(await check('')).toBe('SERVING');
      expect(await check(AUDIT)).toBe('SERVING');
      expect(await check('flowloom.gateway.v1.Gateway')).toBe(grpc.status.NOT_FOUND);
    } finally {
      client.close();
    }
  });

  it('when the ledger database becomes unreachable, then the server and the Audit service are NOT_SERVING', async () => {
    // A service of its own on a pool of its own: ending that pool fails every query, as with the
    // database down, and leaves the other tests' pool alone.
    const pool = await openPostgres(database.url ?? '', { max: 2 });
    const second = await startAudit({ config: standaloneAuditConfig(dirs[1]!.path, ADMIN), db: pool });
    const { client, check } = healthOf(second.grpcAddress);
    try {
      expect(await check(AUDIT)).toBe('SERVING');
      await pool.close();
      expect(await check('')).toBe('NOT_SERVING');
      expect(await check(AUDIT)).toBe('NOT_SERVING');
    } finally {
      client.close();
      await second.close().catch(() => {});
    }
  });
});

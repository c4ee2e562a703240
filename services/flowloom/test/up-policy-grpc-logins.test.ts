import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@flowloom/config';
import { freePort } from '@flowloom/gateway/testing/ports';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPlatform, startEmbeddedPlatform } from '../src/commands/up.js';

// In `flowloom up` with policy.grpcPort set, the policy service's gRPC admin API checks keys with the
// gateway's authorizer, so its refusals and logins reach the audit trail like the HTTP admin API's.

const ADMIN = 'flk_up-policy-grpc-admin-0123456789abcdef';
const WRONG = 'flk_wrongkey-policy-grpc-0123456789abcdef';
const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));

type ListPolicies = (
  request: Record<string, never>,
  metadata: grpc.Metadata,
  callback: (error: grpc.ServiceError | null) => void,
) => void;

let dir: string;
let platform: EmbeddedPlatform;
let policyAddress: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-up-policy-grpc-'));
  const env = {
    FLOWLOOM_DATA_DIR: dir,
    FLOWLOOM_HTTP_PORT: '0',
    FLOWLOOM_GRPC_PORT: '0',
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'silent',
  };
  const config = loadConfig({ env });
  const port = await freePort();
  policyAddress = `127.0.0.1:${port}`;
  platform = await startEmbeddedPlatform({ ...config, policy: { ...config.policy, grpcPort: port } }, env);
}, 120_000);

afterAll(async () => {
  await platform?.close();
  rmSync(dir, { recursive: true, force: true });
});

function listPolicies(key: string): Promise<grpc.ServiceError | null> {
  const definition = protoLoader.loadSync(`${PROTO_ROOT}/flowloom/policy/v1/policy.proto`, {
    includeDirs: [PROTO_ROOT],
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    flowloom: { policy: { v1: { PolicyAdmin: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.flowloom.policy.v1.PolicyAdmin(policyAddress, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  return new Promise((resolve) =>
    (client as unknown as { listPolicies: ListPolicies }).listPolicies({}, metadata, (error) => {
      client.close();
      resolve(error);
    }),
  );
}

/** The ledger's auth.failed events, through the audit admin API. */
async function refusals(): Promise<
  { source: string; event: { data: { reason?: string; keyHint?: string } } }[]
> {
  const response = await fetch(
    `${platform.gateway.httpUrl}/api/v1/audit/entries?type=dev.flowloom.gateway.auth.failed.v1&limit=100`,
    { headers: { authorization: `Bearer ${ADMIN}` } },
  );
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: Awaited<ReturnType<typeof refusals>> }).data;
}

describe('flowloom up: the policy gRPC admin API', () => {
  it('when a wrong key calls the policy gRPC admin API, then the refusal is an auth.failed event in the ledger', async () => {
    expect((await listPolicies(WRONG))?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(await listPolicies(ADMIN)).toBeNull();
    const deadline = Date.now() + 20_000;
    let refused: Awaited<ReturnType<typeof refusals>>[number] | undefined;
    while (!refused && Date.now() < deadline) {
      refused = (await refusals()).find((e) => e.event.data.keyHint?.startsWith('flk_wron'));
      if (!refused) await new Promise((r) => setTimeout(r, 200));
    }
    expect(refused?.source).toBe('flowloom/gateway');
    expect(refused?.event.data).toMatchObject({ surface: 'admin', reason: 'invalid_api_key' });
  }, 60_000);
});

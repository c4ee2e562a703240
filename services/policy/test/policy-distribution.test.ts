import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleFromWire, type PolicyBundle, type PolicyBundleWire } from '@flowloom/contracts';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at, startTestPolicyService, type TestPolicyService, testSchema } from './support.js';

const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));

function distributionClient(address: string) {
  const definition = protoLoader.loadSync(`${PROTO_ROOT}/flowloom/policy/v1/policy.proto`, {
    keepCase: false,
    longs: Number,
    defaults: true,
    includeDirs: [PROTO_ROOT],
  });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    flowloom: { policy: { v1: { PolicyDistribution: grpc.ServiceClientConstructor } } };
  };
  return new root.flowloom.policy.v1.PolicyDistribution(
    address,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    watchBundle(
      request: { knownRevision: number; gateway: string },
      metadata?: grpc.Metadata,
    ): grpc.ClientReadableStream<PolicyBundleWire>;
    getBundle(
      request: Record<string, never>,
      metadata: grpc.Metadata,
      callback: (error: grpc.ServiceError | null, bundle?: PolicyBundleWire) => void,
    ): void;
  };
}

/** Metadata with `authorization: Bearer <owner>` (see testAuthorizer), or none. */
function as(owner?: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (owner) metadata.set('authorization', `Bearer ${owner}`);
  return metadata;
}

/** How a WatchBundle stream ends: its first message, or the status it failed with. */
function firstOf(
  stream: grpc.ClientReadableStream<PolicyBundleWire>,
): Promise<{ bundle?: PolicyBundleWire; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    stream.once('data', (bundle: PolicyBundleWire) => {
      stream.cancel();
      resolve({ bundle });
    });
    stream.once('error', (error: grpc.ServiceError) => resolve({ error }));
  });
}

const POLICY = (action: string) => `name: budget-guard
rules:
  - id: spend
    condition: signals.spend_per_minute > 2.0
    action: ${action}
`;

let schema: Awaited<ReturnType<typeof testSchema>>;
let a: TestPolicyService;
let b: TestPolicyService;
const received: Array<{ at: number; bundle: PolicyBundle }> = [];
let client: ReturnType<typeof distributionClient>;
let stream: grpc.ClientReadableStream<PolicyBundleWire>;

beforeAll(async () => {
  schema = await testSchema();
  const dir = mkdtempSync(join(tmpdir(), 'flowloom-policy-file-'));
  const file = join(dir, 'budget.yaml');
  writeFileSync(file, POLICY('alert'));
  // Replica a loads the configured file and streams bundles over gRPC; replica b shares the database.
  a = await startTestPolicyService(await schema.open(), { grpcPort: 0, policy: { file, mode: 'shadow' } });
  b = await startTestPolicyService(await schema.open(), { pollMs: 200, policy: { file, mode: 'enforce' } });
  client = distributionClient(a.service.grpcAddress!);
  stream = client.watchBundle({ knownRevision: -1, gateway: 'test' }, as('gateway'));
  stream.on('data', (wire: PolicyBundleWire) =>
    received.push({ at: Date.now(), bundle: bundleFromWire(wire) }),
  );
  stream.on('error', () => {});
});
afterAll(async () => {
  stream?.cancel();
  client?.close();
  await b?.close();
  await a?.close();
  await schema?.drop();
});

async function waitFor<T>(ms: number, find: () => T | undefined): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('bundle distribution', () => {
  it('when the configured policy file is loaded, then it is deployed once in its mode and streamed at once', async () => {
    const first = await waitFor(2_000, () => received[0]);
    expect(first.bundle.policies).toEqual([
      expect.objectContaining({
        name: 'budget-guard',
        candidate: expect.objectContaining({ mode: 'shadow' }),
      }),
    ]);
    // Replica b found it deployed already: its own (enforce) setting does not override the deployment.
    const history = at<unknown[]>((await b.call('GET', '/api/v1/policies/budget-guard')).body, 'history');
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ reason: 'initial', actor: expect.stringMatching(/^config:/) });
  });

  it('when a new version is promoted on one replica, then gateways streaming from the other have it within a second', async () => {
    const pushed = await b.call('POST', '/api/v1/policies', 'alice', {
      source: POLICY('block'),
      message: 'block',
    });
    const version = at<string>(pushed.body, 'version');
    const started = Date.now();
    const res = await b.call('POST', '/api/v1/policies/budget-guard/promotions', 'alice', {
      version,
      mode: 'shadow',
    });
    expect(res.status, res.text).toBe(201);
    const update = await waitFor(1_000, () =>
      received.find((r) => r.bundle.policies[0]?.candidate?.version === version),
    );
    expect(update.at - started).toBeLessThan(1_000);
    // In-process subscribers (a gateway in the same process) get it directly.
    const direct: PolicyBundle[] = [];
    const unsubscribe = a.service.source.subscribe((bundle) => direct.push(bundle));
    await waitFor(1_000, () => direct.find((d) => d.policies[0]?.candidate?.version === version));
    unsubscribe();
  });

  it('when a gateway reconnects with the revision it has, then it still gets the current bundle first', async () => {
    const again = client.watchBundle({ knownRevision: 999, gateway: 'again' }, as('gateway'));
    again.on('error', () => {}); // the cancel below ends it with CANCELLED
    const first = await new Promise<PolicyBundleWire>((resolve) => again.once('data', resolve));
    again.cancel();
    expect(bundleFromWire(first).revision).toBe(received.at(-1)?.bundle.revision);
  });

  it('when a caller presents no key or an unknown one, then the stream ends UNAUTHENTICATED and names the credential', async () => {
    for (const metadata of [as(), as('not a key!')]) {
      const { bundle, error } = await firstOf(
        client.watchBundle({ knownRevision: -1, gateway: 'x' }, metadata),
      );
      expect(bundle).toBeUndefined();
      expect(error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(error?.details).toContain("Policy bundles need the gateway's service credential");
      expect(error?.details).toContain('FLOWLOOM_POLICY_SERVICE_KEY');
    }
  });

  it('when a caller presents a key without the admin role, then the stream ends PERMISSION_DENIED', async () => {
    const { bundle, error } = await firstOf(
      client.watchBundle({ knownRevision: -1, gateway: 'x' }, as('member')),
    );
    expect(bundle).toBeUndefined();
    expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(error?.details).toContain('needs an admin key');
  });

  it('when GetBundle is called, then the same credential is required', async () => {
    const get = (metadata: grpc.Metadata) =>
      new Promise<{ error: grpc.ServiceError | null; bundle?: PolicyBundleWire }>((resolve) =>
        client.getBundle({}, metadata, (error, bundle) => resolve({ error, ...(bundle ? { bundle } : {}) })),
      );
    expect((await get(as())).error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await get(as('member'))).error?.code).toBe(grpc.status.PERMISSION_DENIED);
    const allowed = await get(as('gateway'));
    expect(allowed.error).toBeNull();
    expect(bundleFromWire(allowed.bundle!).revision).toBe(received.at(-1)?.bundle.revision);
  });

  it('when the service records changes, then each is an event on the bus', async () => {
    const types = (await b.events()).map((e) => e.type);
    expect(types).toContain('dev.flowloom.policy.version.pushed.v1');
    expect(types).toContain('dev.flowloom.policy.deployment.changed.v1');
  });
});

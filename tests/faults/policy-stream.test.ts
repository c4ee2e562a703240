import { mkdtempSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall } from '../bench/processes.js';
import { blockJobPolicy } from './block-job-policy.js';
import { freshDatabase } from './engines.js';
import { metricOf, migrate, type Service, serviceOnFreePorts } from './services.js';
import { tearDown } from './teardown.js';
import { until } from './until.js';

// The policy bundle stream under a killed policy service: `flowloom serve gateway` streams bundles
// from `flowloom serve policy` (each a process of its own). The policy process is killed (SIGKILL:
// the kernel resets the stream's connection under the gateway); the gateway keeps enforcing the last
// bundle and says in /readyz and /metrics that it may be stale; the policy service is started again
// and a new version approved there reaches the gateway within seconds, with no gateway restart.

const ADMIN = 'flk_faults-policy-stream-admin-0123456789ab';
const GUARD = (job: string) => blockJobPolicy('stream-guard', job);

let database: { url: string; drop(): Promise<void> } | undefined;
let work = '';
const services: Service[] = [];
let gateway: Service;
/** A second gateway whose stream goes through `relay`, a TCP hop the test can freeze. */
let partitioned: Service;
let relay: FreezableRelay;
let policy: Service;
let memberKey = '';
let reviewerKey = '';
let authorKey = '';

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'flowloom-faults-policy-stream-'));
  database = await freshDatabase('flowloom_faults_pstream');
  const common: Record<string, string> = {
    FLOWLOOM_DATABASE_URL: database.url,
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'error',
  };
  await migrate(common);
  policy = await serviceOnFreePorts('policy', 'policy', common, work);
  const policyGrpc = Number(policy.env.FLOWLOOM_GRPC_PORT);
  relay = await FreezableRelay.open(policyGrpc);
  gateway = await serviceOnFreePorts(
    'gateway',
    'gateway',
    { ...common, FLOWLOOM_POLICY_SERVICE_URL: `127.0.0.1:${policyGrpc}` },
    work,
  );
  partitioned = await serviceOnFreePorts(
    'gateway-b',
    'gateway',
    { ...common, FLOWLOOM_POLICY_SERVICE_URL: `127.0.0.1:${relay.port}` },
    work,
  );
  services.push(gateway, partitioned, policy);
  await policy.start();
  await Promise.all([gateway.start(), partitioned.start()]);
  memberKey = (
    await adminCall<{ key: string }>(gateway.url, ADMIN, 'POST', '/api/v1/keys', { name: 'agent' })
  ).key;
  // Personal admin keys from the bootstrap key: one pushes policies, the other approves them.
  const personal = async (owner: string) =>
    (
      await adminCall<{ key: string }>(gateway.url, ADMIN, 'POST', '/api/v1/keys', {
        name: owner,
        owner,
        role: 'admin',
      })
    ).key;
  authorKey = await personal('alice');
  reviewerKey = await personal('reviewer');
}, 90_000);

afterAll(async () => {
  await relay?.close();
  await tearDown({ services, database, work });
}, 60_000);

/**
 * A TCP relay to the policy service that can be frozen: bytes stop flowing both ways on every
 * connection, open or new, without any being closed, as in a network partition or a hung host.
 */
class FreezableRelay {
  private frozen = false;
  private readonly pairs = new Set<[Socket, Socket]>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async open(targetPort: number): Promise<FreezableRelay> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const relay = new FreezableRelay(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [client, upstream];
      relay.pairs.add(pair);
      for (const s of pair) {
        s.on('error', () => {});
        s.on('close', () => {
          relay.pairs.delete(pair);
          client.destroy();
          upstream.destroy();
        });
      }
      if (!relay.frozen) relay.flow(pair);
    });
    return relay;
  }

  private flow([client, upstream]: [Socket, Socket]): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }

  freeze(): void {
    this.frozen = true;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Frozen connections stay stuck (their peers gave up on them); new ones flow. */
  thaw(): void {
    this.frozen = false;
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) for (const s of pair) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Pushes a version, has it promoted to enforce and approved by a second admin; returns its id and when it was approved. */
async function enforce(source: string): Promise<{ version: string; approvedAt: number }> {
  const { version } = await adminCall<{ version: string }>(
    policy.url,
    authorKey,
    'POST',
    '/api/v1/policies',
    {
      source,
    },
  );
  const { promotion } = await adminCall<{ promotion: { id: string } }>(
    policy.url,
    authorKey,
    'POST',
    '/api/v1/policies/stream-guard/promotions',
    { version, mode: 'enforce' },
  );
  await adminCall(policy.url, reviewerKey, 'POST', `/api/v1/promotions/${promotion.id}/approve`);
  return { version, approvedAt: Date.now() };
}

async function enforcedVersion(): Promise<string | undefined> {
  const status = await adminCall<{ policies: Array<{ stable?: string }> }>(
    gateway.url,
    ADMIN,
    'GET',
    '/api/v1/gateway/policy',
  );
  return status.policies[0]?.stable;
}

/** The status of a chat request in `job`, and its error code when refused. */
async function ask(job: string): Promise<{ status: number; code?: string }> {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${memberKey}`,
      'content-type': 'application/json',
      'x-flowloom-job': job,
    },
    body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] }),
  });
  const body = (await response.json()) as { error?: { code?: string } };
  return { status: response.status, ...(body.error?.code ? { code: body.error.code } : {}) };
}

async function policyCheck(at = gateway): Promise<{ status: number; policy: string | undefined }> {
  const response = await fetch(`${at.url}/readyz`);
  const body = (await response.json()) as { checks: Record<string, string> };
  return { status: response.status, policy: body.checks.policy };
}

describe('policy bundle stream when the policy service is killed', () => {
  it('when the policy process is killed under the stream, then the gateway keeps enforcing the last bundle and says it may be stale; restarted, a new version reaches it within seconds', async () => {
    const v1 = await enforce(GUARD('blocked-1'));
    await until('the gateway to enforce v1', async () =>
      (await enforcedVersion()) === v1.version ? true : undefined,
    );
    expect(await ask('blocked-1')).toEqual({ status: 403, code: 'policy_blocked' });
    expect(await policyCheck()).toEqual({ status: 200, policy: 'ok' });
    expect(await metricOf(gateway.url, 'flowloom_policy_stream_connected')).toBe(1);

    await policy.kill();
    const killedAt = Date.now();
    const down = await until('the gateway to notice the broken stream', async () => {
      const check = await policyCheck();
      return check.policy?.startsWith('degraded:') ? check : undefined;
    });
    const noticedSeconds = (Date.now() - killedAt) / 1000;
    expect(down.status).toBe(200);
    expect(down.policy).toMatch(
      /policy service at 127\.0\.0\.1:\d+ unreachable since .*revision \d+ .*stays in force/,
    );
    expect(down.policy).toContain('FLOWLOOM_POLICY_SERVICE_URL');
    expect(await metricOf(gateway.url, 'flowloom_policy_stream_connected')).toBe(0);
    expect(await metricOf(gateway.url, 'flowloom_policy_bundle_stale_seconds')).toBeGreaterThan(0);
    // The last bundle stays in force without the policy service.
    expect(await ask('blocked-1')).toEqual({ status: 403, code: 'policy_blocked' });
    expect((await ask('allowed')).status).toBe(200);

    await policy.start();
    const v2 = await enforce(GUARD('blocked-2'));
    await until(
      'the gateway to enforce v2',
      async () => ((await enforcedVersion()) === v2.version ? true : undefined),
      15_000,
    );
    const deliveredSeconds = (Date.now() - v2.approvedAt) / 1000;
    expect(deliveredSeconds).toBeLessThan(6);
    expect(await ask('blocked-2')).toEqual({ status: 403, code: 'policy_blocked' });
    expect((await ask('blocked-1')).status).toBe(200);
    expect(await policyCheck()).toEqual({ status: 200, policy: 'ok' });
    expect(await metricOf(gateway.url, 'flowloom_policy_stream_connected')).toBe(1);
    expect(await metricOf(gateway.url, 'flowloom_policy_bundle_stale_seconds')).toBe(0);
    console.log(
      `[faults] policy stream: kill noticed in ${noticedSeconds.toFixed(1)} s, last bundle enforced meanwhile; policy restarted in ${policy.startSeconds.toFixed(1)} s; a version approved after the restart reached the gateway in ${deliveredSeconds.toFixed(1)} s`,
    );
  }, 90_000);

  it('when the network to the policy service goes silent (nothing closed), then keepalive finds the dead stream, hung reconnects are given up at their first-bundle deadline, and the stream comes back once the network does', async () => {
    await until('gateway B to stream bundles', async () =>
      (await policyCheck(partitioned)).policy === 'ok' ? true : undefined,
    );
    relay.freeze();
    const frozenAt = Date.now();
    // The stream is quiet anyway (no policy change): only keepalive pings can tell it is dead.
    const dead = await until(
      'keepalive to find the dead stream',
      async () => {
        const check = await policyCheck(partitioned);
        return check.policy?.startsWith('degraded:') ? check : undefined;
      },
      30_000,
    );
    const detectedSeconds = (Date.now() - frozenAt) / 1000;
    expect(dead.status).toBe(200);
    expect(dead.policy).toContain('stays in force');
    // Reconnects reach a relay that accepts and then says nothing: each is dropped at its deadline.
    await until(
      'a reconnect to be given up at its deadline',
      async () => ((await policyCheck(partitioned)).policy?.includes('no bundle within') ? true : undefined),
      30_000,
    );
    relay.thaw();
    const thawedAt = Date.now();
    await until(
      'the stream to come back',
      async () => ((await policyCheck(partitioned)).policy === 'ok' ? true : undefined),
      20_000,
    );
    console.log(
      `[faults] policy stream partitioned: dead stream found by keepalive in ${detectedSeconds.toFixed(1)} s; back ${((Date.now() - thawedAt) / 1000).toFixed(1)} s after the network`,
    );
  }, 90_000);
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@flowloom/config';
import { startWebhookReceiver, type WebhookReceiver } from '@flowloom/gateway/testing/webhook-receiver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPlatform, startEmbeddedPlatform } from '../src/commands/up.js';

// In `flowloom up` an enforced alert reaches its webhook, and the delivery's outcome reaches the
// audit ledger like every other event.

const ADMIN = 'flk_up-alerts-admin-key-0123456789abcdef';
const DELIVERY = 'dev.flowloom.policy.alert.delivery.v1';

let dir: string;
let platform: EmbeddedPlatform;
let receiver: WebhookReceiver;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-up-alerts-'));
  receiver = await startWebhookReceiver();
  writeFileSync(
    join(dir, 'policy.yaml'),
    'name: watch\nrules:\n  - id: agents\n    condition: request.job.startsWith("agent-")\n    action: { type: alert, channel: ops }\n',
  );
  writeFileSync(
    join(dir, 'flowloom.yaml'),
    `alerts:\n  channels:\n    ops: { urlEnv: OPS_HOOK, format: slack }\n`,
  );
  const env = {
    FLOWLOOM_CONFIG: join(dir, 'flowloom.yaml'),
    FLOWLOOM_DATA_DIR: dir,
    FLOWLOOM_HTTP_PORT: '0',
    FLOWLOOM_GRPC_PORT: '0',
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'silent',
    FLOWLOOM_POLICY_FILE: join(dir, 'policy.yaml'),
    OPS_HOOK: receiver.url,
  };
  const config = loadConfig({ env, cwd: dir });
  platform = await startEmbeddedPlatform({ ...config, audit: { ...config.audit, grpcPort: 0 } }, env);
}, 120_000);

afterAll(async () => {
  await platform?.close();
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('flowloom up: alerts', () => {
  it('when an enforced rule alerts, then the channel gets the post and the ledger records its delivery', async () => {
    const response = await fetch(`${platform.gateway.httpUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ADMIN}`,
        'content-type': 'application/json',
        'x-flowloom-job': 'agent-1',
      },
      body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.status).toBe(200);
    const decisionId = response.headers.get('x-flowloom-decision');
    const deadline = Date.now() + 20_000;
    let entries: Array<{ event: { data: { decisionId?: string; outcome?: string; channel?: string } } }> = [];
    while (Date.now() < deadline) {
      await platform.gateway.flushOutbox();
      const found = await fetch(
        `${platform.gateway.httpUrl}/api/v1/audit/entries?type=${DELIVERY}&limit=10`,
        {
          headers: { authorization: `Bearer ${ADMIN}` },
        },
      );
      entries = ((await found.json()) as { data: typeof entries }).data ?? [];
      if (entries.some((e) => e.event.data.decisionId === decisionId)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(receiver.posts).toHaveLength(1);
    expect(String(receiver.posts[0]!.body.text)).toContain('rule "agents" (enforce) on job agent-1');
    expect(entries.find((e) => e.event.data.decisionId === decisionId)?.event.data).toMatchObject({
      channel: 'ops',
      outcome: 'delivered',
    });
  });
});

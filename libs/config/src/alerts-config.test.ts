import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.js';

function dir(yaml: string): string {
  const d = mkdtempSync(join(tmpdir(), 'flowloom-alerts-config-'));
  writeFileSync(join(d, 'flowloom.yaml'), yaml);
  return d;
}

const CHANNELS = `
alerts:
  channels:
    ops: { urlEnv: OPS_WEBHOOK, format: slack }
    pager: { url: https://alerts.example.com/hook, headersEnv: { authorization: PAGER_AUTH } }
  defaultChannel: ops
`;

describe('alerts configuration', () => {
  it('when channels name their secrets by variable, then the config holds the names and not the values', () => {
    const env = { OPS_WEBHOOK: 'https://hooks.slack.com/services/T/B/secret', PAGER_AUTH: 'Bearer tok-123' };
    const c = loadConfig({ env, cwd: dir(CHANNELS) });
    expect(c.alerts.channels.ops).toMatchObject({ urlEnv: 'OPS_WEBHOOK', format: 'slack', headers: {} });
    expect(c.alerts.channels.pager).toMatchObject({
      format: 'json',
      headersEnv: { authorization: 'PAGER_AUTH' },
    });
    expect(c.alerts).toMatchObject({
      defaultChannel: 'ops',
      queueSize: 1000,
      maxAttempts: 4,
      windowSeconds: 60,
    });
    const text = JSON.stringify(c);
    expect(text).not.toContain('secret');
    expect(text).not.toContain('tok-123');
  });

  it('when a channel names a variable that is not set, then start-up stops naming the key and the fix', () => {
    expect(() => loadConfig({ env: { OPS_WEBHOOK: 'https://x.example' }, cwd: dir(CHANNELS) })).toThrow(
      /alerts\.channels\.pager\.headersEnv\.authorization names PAGER_AUTH, which is not set\. Fix/,
    );
  });

  it('when the default channel is not configured or a channel has both url and urlEnv, then start-up stops', () => {
    expect(() => loadConfig({ env: {}, cwd: dir('alerts: { defaultChannel: ops }\n') })).toThrow(
      /alerts\.defaultChannel names "ops".*Fix/,
    );
    expect(() =>
      loadConfig({
        env: { X: 'https://x.example' },
        cwd: dir('alerts: { channels: { ops: { url: "https://x.example", urlEnv: X } } }\n'),
      }),
    ).toThrow(/exactly one of url and urlEnv/);
  });
});

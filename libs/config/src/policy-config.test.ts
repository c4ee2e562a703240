import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.js';

function dir(yaml?: string): string {
  const d = mkdtempSync(join(tmpdir(), 'flowloom-config-'));
  if (yaml !== undefined) writeFileSync(join(d, 'flowloom.yaml'), yaml);
  return d;
}

describe('policy and signals settings', () => {
  it('when nothing is set, then no policy file is loaded and signal windows have their defaults', () => {
    const c = loadConfig({ env: {}, cwd: dir() });
    expect(c.policy).toEqual({
      mode: 'enforce',
      percent: 10,
      retentionDays: 30,
      retentionIntervalMs: 3_600_000,
    });
    expect(c.signals).toMatchObject({ windowSeconds: 60, repeatWindowSeconds: 300, similarity: 0.75 });
  });

  it('when FLOWLOOM_POLICY_FILE is relative, then it is resolved against the working folder and merged with the file', () => {
    const cwd = dir('policy:\n  mode: shadow\nsignals:\n  windowSeconds: 30\n');
    const c = loadConfig({ env: { FLOWLOOM_POLICY_FILE: 'guard.yaml' }, cwd });
    expect(c.policy).toMatchObject({ file: join(cwd, 'guard.yaml'), mode: 'shadow' });
    expect(c.signals.windowSeconds).toBe(30);
  });

  it('when a policy setting is wrong, then start-up names the variable', () => {
    expect(() => loadConfig({ env: { FLOWLOOM_POLICY_MODE: 'loud' }, cwd: dir() })).toThrow(
      /FLOWLOOM_POLICY_MODE \(policy\.mode\)/,
    );
    expect(() => loadConfig({ env: { FLOWLOOM_POLICY_SERVICE_URL: 'http://x' }, cwd: dir() })).toThrow(
      /FLOWLOOM_POLICY_SERVICE_URL \(policy\.serviceUrl\): must be host:port/,
    );
  });

  it('when FLOWLOOM_POLICY_SERVICE_KEY is set, then it is the credential for the bundle stream; a short one is refused by name', () => {
    const key = 'flk_gateway-service-key-0123456789';
    expect(loadConfig({ env: { FLOWLOOM_POLICY_SERVICE_KEY: key }, cwd: dir() }).policy.serviceKey).toBe(key);
    expect(() => loadConfig({ env: { FLOWLOOM_POLICY_SERVICE_KEY: 'short' }, cwd: dir() })).toThrow(
      /FLOWLOOM_POLICY_SERVICE_KEY \(policy\.serviceKey\): must be at least 16 characters/,
    );
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, providerApiKey } from './load.js';

function dir(yaml?: string): string {
  const d = mkdtempSync(join(tmpdir(), 'flowloom-config-'));
  if (yaml !== undefined) writeFileSync(join(d, 'flowloom.yaml'), yaml);
  return d;
}

describe('loadConfig', () => {
  it('when nothing is set, then the documented defaults apply', () => {
    const c = loadConfig({ env: {}, cwd: dir() });
    expect(c).toMatchObject({ host: '127.0.0.1', httpPort: 8080, grpcPort: 50051, dataDir: './.flowloom' });
    expect(c.providers).toEqual({});
  });

  it('when a port variable is not a number, then start-up stops naming the variable and the fix', () => {
    expect(() => loadConfig({ env: { FLOWLOOM_HTTP_PORT: 'eighty' }, cwd: dir() })).toThrow(
      /FLOWLOOM_HTTP_PORT.*Fix/,
    );
    expect(() => loadConfig({ env: { FLOWLOOM_HTTP_PORT: '70000' }, cwd: dir() })).toThrow(
      /FLOWLOOM_HTTP_PORT \(httpPort\)/,
    );
  });

  it('when OPENAI_API_KEY and OPENAI_BASE_URL are set, then an openai provider is enabled without copying the key', () => {
    const c = loadConfig({
      env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' },
      cwd: dir(),
    });
    expect(c.providers.openai).toMatchObject({
      kind: 'openai',
      baseUrl: 'http://127.0.0.1:9/v1',
      apiKeyEnv: 'OPENAI_API_KEY',
    });
    expect(JSON.stringify(c)).not.toContain('sk-test');
    expect(providerApiKey(c.providers.openai!, { OPENAI_API_KEY: 'sk-test' })).toBe('sk-test');
  });

  it('when flowloom.yaml has an unknown key, then the error names the file and the key', () => {
    const d = dir('httpPort: 9000\nmodles: {}\n');
    expect(() => loadConfig({ env: {}, cwd: d })).toThrow(ConfigError);
    expect(() => loadConfig({ env: {}, cwd: d })).toThrow(/flowloom\.yaml.*modles|Unrecognized key.*modles/);
  });

  it('when an alias names an unknown provider, then the error lists the configured ones', () => {
    const d = dir('models:\n  smart:\n    deployments:\n      - { provider: nope, model: m }\n');
    expect(() => loadConfig({ env: {}, cwd: d })).toThrow(
      /models\.smart\.deployments\[0\]\.provider: unknown provider "nope"/,
    );
  });

  it('when the file refers to an unset variable, then the error says which', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the YAML itself contains ${VLLM_URL}
    const d = dir('providers:\n  vllm:\n    kind: openai-compatible\n    baseUrl: ${VLLM_URL}\n');
    expect(() => loadConfig({ env: {}, cwd: d })).toThrow(/VLLM_URL/);
    const c = loadConfig({ env: { VLLM_URL: 'http://127.0.0.1:8000/v1' }, cwd: d });
    expect(c.providers.vllm?.baseUrl).toBe('http://127.0.0.1:8000/v1');
  });

  it('when the environment and the file both set a value, then the environment wins', () => {
    const c = loadConfig({ env: { FLOWLOOM_HTTP_PORT: '9100' }, cwd: dir('httpPort: 9000\n') });
    expect(c.httpPort).toBe(9100);
  });

  it('when the audit section is set in the file and by variables, then both apply and the variable wins', () => {
    const d = dir(
      'audit:\n  origin: audit.example.com/flowloom\n  checkpointIntervalMs: 2000\n  retention:\n    "dev.flowloom.gateway.*": 365\n',
    );
    const c = loadConfig({ env: { FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '750' }, cwd: d });
    expect(c.audit).toMatchObject({
      origin: 'audit.example.com/flowloom',
      checkpointIntervalMs: 750,
      retention: { 'dev.flowloom.gateway.*': 365 },
    });
    expect(loadConfig({ env: {}, cwd: dir() }).audit).toMatchObject({
      checkpointIntervalMs: 5000,
      retention: {},
    });
  });

  it('when an audit setting is invalid, then the error names its variable or key', () => {
    expect(() => loadConfig({ env: { FLOWLOOM_AUDIT_ORIGIN: 'has space' }, cwd: dir() })).toThrow(
      /FLOWLOOM_AUDIT_ORIGIN \(audit\.origin\)/,
    );
    expect(() => loadConfig({ env: {}, cwd: dir('audit:\n  retention:\n    "Not A Type": 3\n') })).toThrow(
      /audit\.retention/,
    );
  });

  it('when Kafka topic settings come from the file and variables, then the variable wins; without them one broker suffices', () => {
    expect(loadConfig({ env: {}, cwd: dir() }).kafkaTopics).toEqual({
      partitions: 6,
      replicationFactor: 1,
      prefix: 'flowloom',
    });
    const c = loadConfig({
      env: { FLOWLOOM_KAFKA_REPLICATION_FACTOR: '3', FLOWLOOM_KAFKA_TOPIC_PREFIX: 'staging' },
      cwd: dir('kafkaTopics:\n  partitions: 12\n  replicationFactor: 2\n'),
    });
    expect(c.kafkaTopics).toEqual({ partitions: 12, replicationFactor: 3, prefix: 'staging' });
    expect(() => loadConfig({ env: { FLOWLOOM_KAFKA_REPLICATION_FACTOR: '0' }, cwd: dir() })).toThrow(
      /FLOWLOOM_KAFKA_REPLICATION_FACTOR \(kafkaTopics\.replicationFactor\)/,
    );
    expect(() => loadConfig({ env: { FLOWLOOM_KAFKA_TOPIC_PREFIX: 'a.b' }, cwd: dir() })).toThrow(
      /FLOWLOOM_KAFKA_TOPIC_PREFIX/,
    );
  });
});

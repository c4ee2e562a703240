import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema, type ProviderConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Each variable, the config key it sets, and how to read it. The README's reference mirrors this list. */
export const ENV_VARIABLES = {
  FLOWLOOM_HOST: { key: 'host', type: 'string' },
  FLOWLOOM_HTTP_PORT: { key: 'httpPort', type: 'int' },
  FLOWLOOM_GRPC_PORT: { key: 'grpcPort', type: 'int' },
  FLOWLOOM_DATA_DIR: { key: 'dataDir', type: 'string' },
  FLOWLOOM_DATABASE_URL: { key: 'databaseUrl', type: 'string' },
  FLOWLOOM_REDIS_URL: { key: 'redisUrl', type: 'string' },
  FLOWLOOM_LIMITS_FALLBACK: { key: 'limitsFallback', type: 'string' },
  FLOWLOOM_KAFKA_BROKERS: { key: 'kafkaBrokers', type: 'list' },
  FLOWLOOM_KAFKA_PARTITIONS: { key: 'kafkaTopics.partitions', type: 'int' },
  FLOWLOOM_KAFKA_REPLICATION_FACTOR: { key: 'kafkaTopics.replicationFactor', type: 'int' },
  FLOWLOOM_KAFKA_TOPIC_PREFIX: { key: 'kafkaTopics.prefix', type: 'string' },
  FLOWLOOM_ADMIN_KEY: { key: 'adminKey', type: 'string' },
  FLOWLOOM_AUTH_FAILURE_WINDOW_MS: { key: 'authFailureWindowMs', type: 'int' },
  FLOWLOOM_LOG_LEVEL: { key: 'logLevel', type: 'string' },
  FLOWLOOM_MAX_BODY_BYTES: { key: 'maxBodyBytes', type: 'int' },
  FLOWLOOM_OUTBOX_FSYNC: { key: 'outboxFsync', type: 'string' },
  FLOWLOOM_OUTBOX_ON_DATABASE_DOWN: { key: 'outboxOnDatabaseDown', type: 'string' },
  FLOWLOOM_POLICY_FILE: { key: 'policy.file', type: 'string' },
  FLOWLOOM_POLICY_MODE: { key: 'policy.mode', type: 'string' },
  FLOWLOOM_POLICY_SERVICE_URL: { key: 'policy.serviceUrl', type: 'string' },
  FLOWLOOM_POLICY_SERVICE_KEY: { key: 'policy.serviceKey', type: 'string' },
  FLOWLOOM_POLICY_HTTP_URL: { key: 'policy.httpUrl', type: 'string' },
  FLOWLOOM_POLICY_DB_LOGIN: { key: 'policy.dbLogin', type: 'string' },
  FLOWLOOM_POLICY_RETENTION_DAYS: { key: 'policy.retentionDays', type: 'int' },
  FLOWLOOM_AUDIT_HTTP_URL: { key: 'audit.httpUrl', type: 'string' },
  FLOWLOOM_PEER_TIMEOUT_MS: { key: 'peerTimeoutMs', type: 'int' },
  FLOWLOOM_AUDIT_ORIGIN: { key: 'audit.origin', type: 'string' },
  FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: { key: 'audit.checkpointIntervalMs', type: 'int' },
  FLOWLOOM_AUDIT_SIGNING_KEY_FILE: { key: 'audit.signingKeyFile', type: 'string' },
  FLOWLOOM_AUDIT_SIGNING_KEY_MODE: { key: 'audit.signingKeyMode', type: 'string' },
  FLOWLOOM_AUDIT_CHECKPOINT_DIR: { key: 'audit.checkpointDir', type: 'string' },
  FLOWLOOM_AUDIT_CHECKPOINT_URL: { key: 'audit.checkpointUrl', type: 'string' },
  FLOWLOOM_AUDIT_GRPC_PORT: { key: 'audit.grpcPort', type: 'int' },
  FLOWLOOM_AUDIT_HTTP_PORT: { key: 'audit.httpPort', type: 'int' },
  FLOWLOOM_AUDIT_DB_ROLE: { key: 'audit.dbRole', type: 'string' },
  FLOWLOOM_AUDIT_DB_ROLE_MEMBERS: { key: 'audit.dbRoleMembers', type: 'list' },
  FLOWLOOM_AUDIT_DB_LOGIN: { key: 'audit.dbLogin', type: 'string' },
} as const;

/** Sets `a.b` in nested objects (variables such as FLOWLOOM_POLICY_FILE set `policy.file`). */
function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    const child: Record<string, unknown> =
      next !== null && typeof next === 'object' && !Array.isArray(next)
        ? { ...(next as Record<string, unknown>) }
        : {};
    node[part] = child;
    node = child;
  }
  node[parts[parts.length - 1] ?? key] = value;
}

function readInt(name: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) {
    throw new ConfigError(
      `${name}="${value}" is not a whole number. Fix: set ${name} to a number such as 8080, or unset it.`,
    );
  }
  return Number(value);
}

/** Replaces `${VAR}` in YAML strings with the environment's value (empty strings are an error). */
function interpolate(value: unknown, env: Env, path: string): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z0-9_]+)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined || v === '') {
        throw new ConfigError(
          `${path} refers to \${${name}}, which is not set. Fix: export ${name} or edit ${path}.`,
        );
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, env, `${path}.${k}`)]),
    );
  }
  return value;
}

function readFile(path: string, env: Env): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${path} is not valid YAML: ${(error as Error).message}`);
  }
  if (doc == null) return {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigError(`${path} must be a YAML mapping of settings.`);
  return interpolate(doc, env, path) as Record<string, unknown>;
}

/** Providers enabled by the variables the official SDKs use, unless flowloom.yaml already names them. */
function providersFromEnv(env: Env): Record<string, ProviderConfig> {
  const out: Record<string, ProviderConfig> = {};
  if (env.OPENAI_API_KEY) {
    out.openai = {
      kind: 'openai',
      apiKeyEnv: 'OPENAI_API_KEY',
      ...(env.OPENAI_BASE_URL ? { baseUrl: env.OPENAI_BASE_URL } : {}),
      models: ['gpt-*', 'o1*', 'o3*', 'o4*', 'chatgpt-*', 'text-embedding-*'],
    };
  }
  if (env.ANTHROPIC_API_KEY) {
    out.anthropic = {
      kind: 'anthropic',
      apiKeyEnv: 'ANTHROPIC_API_KEY',
      ...(env.ANTHROPIC_BASE_URL ? { baseUrl: env.ANTHROPIC_BASE_URL } : {}),
      models: ['claude-*'],
    };
  }
  const geminiKey = env.GEMINI_API_KEY ? 'GEMINI_API_KEY' : env.GOOGLE_API_KEY ? 'GOOGLE_API_KEY' : undefined;
  if (geminiKey) {
    out.gemini = {
      kind: 'gemini',
      apiKeyEnv: geminiKey,
      ...(env.GEMINI_BASE_URL ? { baseUrl: env.GEMINI_BASE_URL } : {}),
      models: ['gemini-*', 'text-embedding-004', 'gemini-embedding-*'],
    };
  }
  if (env.AZURE_OPENAI_API_KEY) {
    if (!env.AZURE_OPENAI_ENDPOINT) {
      throw new ConfigError(
        'AZURE_OPENAI_API_KEY is set but AZURE_OPENAI_ENDPOINT is not. Fix: export AZURE_OPENAI_ENDPOINT=https://<resource>.openai.azure.com',
      );
    }
    out.azure = {
      kind: 'azure',
      apiKeyEnv: 'AZURE_OPENAI_API_KEY',
      baseUrl: env.AZURE_OPENAI_ENDPOINT,
      apiVersion: env.OPENAI_API_VERSION ?? '2024-10-21',
      models: (env.AZURE_OPENAI_DEPLOYMENTS ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    };
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue, source: string): string {
  const key = issue.path.map(String).join('.');
  const envName = Object.entries(ENV_VARIABLES).find(([, v]) => v.key === key)?.[0];
  const where = envName ? `${envName} (${key})` : `${source}: ${key || '<root>'}`;
  return `${where}: ${issue.message}`;
}

export interface LoadOptions {
  env?: Env;
  cwd?: string;
  /** Settings that win over the file and the environment (e.g. CLI flags, tests). */
  overrides?: Record<string, unknown>;
}

/**
 * Reads flowloom.yaml (FLOWLOOM_CONFIG, default ./flowloom.yaml if present), then the environment,
 * then overrides, and validates the result once. Any problem stops start-up with a message that names
 * the setting and the fix.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = env.FLOWLOOM_CONFIG;
  const path = resolve(cwd, explicit ?? 'flowloom.yaml');
  if (explicit && !existsSync(path)) {
    throw new ConfigError(
      `FLOWLOOM_CONFIG points to ${path}, which does not exist. Fix: create it or unset FLOWLOOM_CONFIG.`,
    );
  }
  const raw: Record<string, unknown> = existsSync(path) ? readFile(path, env) : {};
  for (const [name, spec] of Object.entries(ENV_VARIABLES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(
      raw,
      spec.key,
      spec.type === 'int'
        ? readInt(name, value)
        : spec.type === 'list'
          ? value
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : value,
    );
  }
  const fileProviders = (raw.providers ?? {}) as Record<string, unknown>;
  raw.providers = { ...providersFromEnv(env), ...fileProviders };
  Object.assign(raw, options.overrides ?? {});
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const source = existsSync(path) ? path : 'configuration';
    const lines = parsed.error.issues.slice(0, 5).map((i) => `  - ${describeIssue(i, source)}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  if (config.policy.file) config.policy.file = resolve(cwd, config.policy.file);
  checkReferences(config, env);
  return config;
}

function checkReferences(config: Config, env: Env): void {
  for (const [alias, route] of Object.entries(config.models)) {
    route.deployments.forEach((d, i) => {
      if (!config.providers[d.provider] && d.provider !== 'local') {
        const known = Object.keys(config.providers).join(', ') || 'none';
        throw new ConfigError(
          `models.${alias}.deployments[${i}].provider: unknown provider "${d.provider}" (configured: ${known}). Fix: add it under providers: or set its API key variable.`,
        );
      }
    });
  }
  const { channels, defaultChannel } = config.alerts;
  if (defaultChannel !== undefined && !channels[defaultChannel]) {
    throw new ConfigError(
      `alerts.defaultChannel names "${defaultChannel}", which is not under alerts.channels (configured: ${Object.keys(channels).join(', ') || 'none'}). Fix: add the channel or change defaultChannel.`,
    );
  }
  for (const [name, channel] of Object.entries(channels)) {
    const variables = [
      ...(channel.urlEnv ? [[`alerts.channels.${name}.urlEnv`, channel.urlEnv] as const] : []),
      ...Object.entries(channel.headersEnv).map(
        ([header, variable]) => [`alerts.channels.${name}.headersEnv.${header}`, variable] as const,
      ),
    ];
    for (const [key, variable] of variables) {
      if (!env[variable])
        throw new ConfigError(`${key} names ${variable}, which is not set. Fix: export it or edit ${key}.`);
    }
  }
  for (const [name, provider] of Object.entries(config.providers)) {
    if (provider.apiKeyEnv && !env[provider.apiKeyEnv] && provider.kind !== 'openai-compatible') {
      throw new ConfigError(
        `providers.${name}.apiKeyEnv names ${provider.apiKeyEnv}, which is not set. Fix: export it.`,
      );
    }
  }
}

/** The API key of a provider, read at use so it never sits in the config object that gets logged. */
export function providerApiKey(provider: ProviderConfig, env: Env = process.env): string | undefined {
  if (provider.apiKeyEnv) return env[provider.apiKeyEnv];
  return provider.apiKey;
}

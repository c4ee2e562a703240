import { createHash } from 'node:crypto';
import { AppError } from '@flowloom/errors';
import { describe, expect, it } from 'vitest';
import {
  assertKeyUsable,
  assertModelAllowed,
  generateKeySecret,
  hashKey,
  KEY_PREFIX,
  type KeyRecord,
  keyAllowsModel,
  keyHint,
} from './keys.js';

const NOW = new Date('2025-06-01T12:00:00.000Z');

function key(extra: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: '0190c3f4-0000-7000-8000-000000000001',
    name: 'ci',
    owner: 'alice',
    project: null,
    team: null,
    job: null,
    role: 'member',
    models: null,
    hint: 'flk_abcd…',
    createdAt: new Date('2025-01-01T00:00:00Z'),
    expiresAt: null,
    revokedAt: null,
    rotatedFrom: null,
    createdBy: null,
    rotatedBy: null,
    suspendedAt: null,
    suspension: null,
    ...extra,
  };
}

function errorOf(fn: () => void): AppError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

const seconds = (n: number) => new Date(NOW.getTime() + n * 1000);

describe('key secrets', () => {
  it('when a secret is generated, then it is flk_ and 32 random bytes in base64url, different each time', () => {
    const secrets = new Set(Array.from({ length: 50 }, generateKeySecret));
    expect(secrets.size).toBe(50);
    for (const secret of secrets) {
      expect(secret.startsWith(KEY_PREFIX)).toBe(true);
      const body = secret.slice(KEY_PREFIX.length);
      expect(body).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(body, 'base64url')).toHaveLength(32);
    }
  });

  it('when a secret is hashed, then it is its SHA-256 in hex and does not contain the secret', () => {
    const secret = 'flk_example-secret';
    expect(hashKey(secret)).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(hashKey(secret)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashKey(secret)).not.toContain('example');
    expect(hashKey(`${secret}x`)).not.toBe(hashKey(secret));
  });

  it('when a hint is made, then it shows only the first 8 characters', () => {
    const secret = generateKeySecret();
    const hint = keyHint(secret);
    expect(hint).toBe(`${secret.slice(0, 8)}…`);
    expect(hint.length).toBeLessThan(secret.length);
  });
});

describe('whether a key is usable', () => {
  it('when a key has no expiry and is not revoked, then it is usable', () => {
    expect(() => assertKeyUsable(key(), NOW)).not.toThrow();
  });

  it('when a key is suspended by a decision, then it is refused with key_suspended naming the decision and how to resume it', () => {
    const suspended = key({
      suspendedAt: NOW,
      suspension: { by: 'policy/guard@abc rule loop', reason: 'loop', decisionId: 'd-1', policy: 'guard' },
    });
    const error = errorOf(() => assertKeyUsable(suspended, NOW));
    expect(error.code).toBe('key_suspended');
    expect(error.message).toContain('suspended by decision d-1 (policy/guard@abc rule loop: loop)');
    expect(error.message).toContain(`flowloom keys resume ${suspended.id}`);
    // Revoked wins: a revoked key is gone for good, whatever else it is.
    expect(errorOf(() => assertKeyUsable({ ...suspended, revokedAt: NOW }, NOW)).code).toBe('key_revoked');
  });

  it('when a key was revoked, then it is refused with key_revoked', () => {
    const error = errorOf(() => assertKeyUsable(key({ revokedAt: seconds(-1) }), NOW));
    expect(error.code).toBe('key_revoked');
    expect(error.message).toContain('flk_abcd…');
  });

  it('when a key is revoked at exactly this instant, then it is already refused', () => {
    expect(errorOf(() => assertKeyUsable(key({ revokedAt: NOW }), NOW)).code).toBe('key_revoked');
  });

  it('when a revocation is scheduled in the future, then the key still works until then', () => {
    expect(() => assertKeyUsable(key({ revokedAt: seconds(60) }), NOW)).not.toThrow();
  });

  it('when a key has expired, then it is refused with key_expired naming the time', () => {
    const error = errorOf(() => assertKeyUsable(key({ expiresAt: seconds(-1) }), NOW));
    expect(error.code).toBe('key_expired');
    expect(error.message).toContain(seconds(-1).toISOString());
  });

  it('when a key expires at exactly this instant, then it is refused', () => {
    expect(errorOf(() => assertKeyUsable(key({ expiresAt: NOW }), NOW)).code).toBe('key_expired');
  });

  it('when a key expires later, then it is usable', () => {
    expect(() => assertKeyUsable(key({ expiresAt: seconds(1) }), NOW)).not.toThrow();
  });

  it('when a key is both revoked and expired, then revocation is the reason given', () => {
    expect(
      errorOf(() => assertKeyUsable(key({ revokedAt: seconds(-5), expiresAt: seconds(-5) }), NOW)).code,
    ).toBe('key_revoked');
  });
});

describe('which models a key may use', () => {
  it('when the key has no model list, then every model is allowed', () => {
    expect(keyAllowsModel(key(), 'gpt-4o')).toBe(true);
    expect(keyAllowsModel(key(), 'anything/at-all')).toBe(true);
  });

  it('when the list names models exactly, then only those are allowed', () => {
    const k = key({ models: ['gpt-4o', 'flowloom-local'] });
    expect(keyAllowsModel(k, 'gpt-4o')).toBe(true);
    expect(keyAllowsModel(k, 'flowloom-local')).toBe(true);
    expect(keyAllowsModel(k, 'gpt-4o-mini')).toBe(false);
    expect(keyAllowsModel(k, 'gpt-4')).toBe(false);
    expect(keyAllowsModel(k, 'GPT-4O')).toBe(false);
  });

  it('when a pattern ends in *, then it allows every model with that prefix', () => {
    const k = key({ models: ['claude-*', 'openai/gpt-4o*'] });
    expect(keyAllowsModel(k, 'claude-sonnet-4')).toBe(true);
    expect(keyAllowsModel(k, 'claude-')).toBe(true);
    expect(keyAllowsModel(k, 'openai/gpt-4o-mini')).toBe(true);
    expect(keyAllowsModel(k, 'gpt-4o')).toBe(false);
    expect(keyAllowsModel(k, 'my-claude-x')).toBe(false);
  });

  it('when the pattern is only *, then everything is allowed', () => {
    expect(keyAllowsModel(key({ models: ['*'] }), 'whatever')).toBe(true);
  });

  it('when the list is empty, then nothing is allowed', () => {
    expect(keyAllowsModel(key({ models: [] }), 'flowloom-local')).toBe(false);
  });

  it('when a model is not allowed, then the error is model_not_allowed on the model param and lists what is allowed', () => {
    const error = errorOf(() => assertModelAllowed(key({ models: ['flowloom-local'] }), 'gpt-4o'));
    expect(error.code).toBe('model_not_allowed');
    expect(error.param).toBe('model');
    expect(error.message).toContain("'gpt-4o'");
    expect(error.message).toContain('flowloom-local');
    expect(() => assertModelAllowed(key({ models: ['flowloom-local'] }), 'flowloom-local')).not.toThrow();
  });
});

import { AppError } from '@flowloom/errors';
import { assertKeyUsable, hashKey, type KeyAncestor, type KeyRecord } from '../domain/keys.js';
import type { KeyStore } from '../ports/key-store.js';
import { AUTH_FAILURE_CODES, type AuthAttempt, type AuthEvents } from './auth-events.js';

interface Cached {
  key: KeyRecord | undefined;
  until: number;
}

/**
 * Resolves a presented secret to its key. Lookups are cached briefly so the hot path rarely touches
 * the database; changes made through this process (revoke, rotate) invalidate the cache at once, and
 * other replicas see them within `ttlMs` plus one lookup.
 *
 * A known key whose cache time ran out keeps answering while one lookup refreshes it in the
 * background: the embedded database can be busy for a few hundred milliseconds (indexing the audit
 * trail), and every request of that key would otherwise wait for it at once, every `ttlMs`.
 */
export class Authenticator {
  private readonly cache = new Map<string, Cached>();
  /** One lookup per key hash at a time, shared by every request that needs it. */
  private readonly lookups = new Map<string, Promise<Cached>>();
  /** Bumped by `invalidate`: a lookup begun before it must not put back what it read. */
  private generation = 0;
  private events: AuthEvents | undefined;
  /** A key's lineage never changes (its links are set when it is inserted), so it is kept. */
  private readonly lineages = new Map<string, Promise<KeyAncestor[]>>();

  constructor(
    private readonly store: KeyStore,
    private readonly ttlMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records refused keys and admin logins (`attempt` given) in the audit trail from now on. */
  recordTo(events: AuthEvents): void {
    this.events = events;
  }

  /**
   * Resolves the key; with `attempt`, a refusal is recorded as `auth.failed` before it is thrown.
   * A success records nothing (the model API's requests are recorded as request events).
   */
  async authenticate(secret: string | undefined, attempt?: AuthAttempt): Promise<KeyRecord> {
    if (!attempt || !this.events) return this.resolve(secret, attempt?.api);
    try {
      return await this.resolve(secret, attempt.api);
    } catch (error) {
      await this.refused(error, attempt, secret);
      throw error;
    }
  }

  /** As `authenticate`, and requires the admin role; an admin's login is recorded (deduplicated). */
  async authenticateAdmin(secret: string | undefined, attempt: AuthAttempt): Promise<KeyRecord> {
    const key = await this.authenticate(secret, attempt);
    if (key.role !== 'admin') {
      const error = new AppError('forbidden', 'This endpoint needs an admin key.');
      await this.refused(error, attempt, secret);
      throw error;
    }
    await this.events?.succeeded(attempt, key);
    return key;
  }

  private async refused(error: unknown, attempt: AuthAttempt, secret: string | undefined): Promise<void> {
    if (!this.events || !(error instanceof AppError) || !AUTH_FAILURE_CODES.has(error.code)) return;
    const key = secret && secret.length <= 512 ? this.cache.get(hashKey(secret))?.key : undefined;
    await this.events.failed(attempt, error.code, secret, key);
  }

  private async resolve(secret: string | undefined, api?: string): Promise<KeyRecord> {
    if (!secret)
      throw new AppError(
        'missing_api_key',
        `No API key was given. ${HOW_TO_SEND[api ?? ''] ?? HOW_TO_SEND.openai}`,
      );
    if (secret.length > 512) throw new AppError('invalid_api_key', 'The API key is not valid.');
    const hash = hashKey(secret);
    const now = this.now();
    const cached = this.cache.get(hash);
    if (cached && cached.until >= now) return this.usable(cached, now);
    if (cached?.key) {
      // Known and expired: answer from it; a failed refresh keeps it, as when the store is unreachable.
      this.lookup(hash).catch(() => {});
      return this.usable(cached, now);
    }
    let entry: Cached;
    try {
      entry = await this.lookup(hash);
    } catch (error) {
      // The key store (the database) is unreachable: a key seen before keeps working on what was
      // last read (it can be neither revoked nor rotated meanwhile); an unseen key cannot be checked.
      if (cached) return this.usable(cached, now);
      throw new AppError(
        'unavailable',
        'API keys cannot be checked right now (the key store is unreachable). Retry shortly.',
        { retryAfterSeconds: 2, cause: error },
      );
    }
    return this.usable(entry, now);
  }

  private lookup(hash: string): Promise<Cached> {
    const pending = this.lookups.get(hash);
    if (pending) return pending;
    const generation = this.generation;
    const lookup = this.store
      .findByHash(hash)
      .then((key) => {
        // Unknown keys are cached for less time, so a key created on another replica works quickly.
        const entry = { key, until: this.now() + (key ? this.ttlMs : Math.min(this.ttlMs, 1_000)) };
        if (generation === this.generation) {
          if (this.cache.size >= 10_000) this.cache.clear();
          this.cache.set(hash, entry);
        }
        return entry;
      })
      .finally(() => {
        if (this.lookups.get(hash) === lookup) this.lookups.delete(hash);
      });
    this.lookups.set(hash, lookup);
    return lookup;
  }

  private usable(entry: Cached, now: number): KeyRecord {
    if (!entry.key)
      throw new AppError(
        'invalid_api_key',
        'The API key is not valid. Check it, or ask an admin for a new one.',
      );
    assertKeyUsable(entry.key, new Date(now));
    return entry.key;
  }

  /** The keys whose holders could have known this key's secret (see KeyStore.lineage). */
  lineage(keyId: string): Promise<KeyAncestor[]> {
    const known = this.lineages.get(keyId);
    if (known) return known;
    if (this.lineages.size >= 10_000) this.lineages.clear();
    const lookup = this.store.lineage(keyId);
    this.lineages.set(keyId, lookup);
    lookup.catch(() => this.lineages.delete(keyId));
    return lookup;
  }

  invalidate(): void {
    this.generation++;
    this.cache.clear();
    this.lookups.clear();
  }
}

/** Where the key goes, told in the terms of the caller's API (its SDK's own header first). */
const HOW_TO_SEND: Readonly<Record<string, string>> = {
  openai: 'Send it as "Authorization: Bearer <key>" or "x-api-key: <key>".',
  anthropic: 'Send it as "x-api-key: <key>" or "Authorization: Bearer <key>".',
  gemini: 'Send it as "x-goog-api-key: <key>", as ?key=<key>, or as "Authorization: Bearer <key>".',
  grpc: 'Send it as the "authorization: Bearer <key>" metadata.',
};

/** Reads the key from `Authorization: Bearer` (OpenAI SDKs) or `x-api-key` (Anthropic SDKs). */
export function presentedKey(headers: {
  authorization?: string | undefined;
  'x-api-key'?: string | undefined;
  'x-goog-api-key'?: string | undefined;
}): string | undefined {
  const auth = headers.authorization;
  if (auth) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return match ? match[1] : auth.trim();
  }
  return headers['x-api-key']?.trim() || headers['x-goog-api-key']?.trim() || undefined;
}

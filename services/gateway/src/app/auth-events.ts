import {
  type AuthFailed,
  type AuthSucceeded,
  type CloudEvent,
  createEvent,
  GATEWAY_AUTH_FAILED,
  GATEWAY_AUTH_SUCCEEDED,
} from '@flowloom/contracts';
import { type KeyRecord, keyHint } from '../domain/keys.js';
import type { Outbox } from '../ports/outbox.js';

/** Where and how a key was presented: what an authentication event records besides the key. */
export interface AuthAttempt {
  surface: 'model' | 'admin';
  /** `openai`, `anthropic`, `gemini`, `grpc` or `admin`. */
  api: string;
  requestId: string;
  sourceIp?: string | undefined;
}

/** Error codes that mean "this caller could not be authenticated" (not e.g. `unavailable`). */
export const AUTH_FAILURE_CODES: ReadonlySet<string> = new Set([
  'missing_api_key',
  'invalid_api_key',
  'key_revoked',
  'key_expired',
  'forbidden',
]);

/**
 * Authentication events for the audit trail, through the outbox like every other event: each
 * refused key, and admin logins at most once per key per `dedupMs` in this process, so a busy admin
 * client does not flood the ledger. Successful model requests produce nothing here (they already
 * produce request.completed). Only the key's hint (its first characters) is recorded, never the secret.
 */
export class AuthEvents {
  private readonly lastLogin = new Map<string, number>();

  constructor(
    private readonly outbox: Outbox,
    private readonly dedupMs = 15 * 60_000,
    private readonly onError: (error: unknown) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  async failed(
    attempt: AuthAttempt,
    reason: string,
    secret: string | undefined,
    key: KeyRecord | undefined,
  ): Promise<void> {
    const data: AuthFailed = {
      ...this.common(attempt),
      reason,
      ...(key ? { keyHint: key.hint, keyId: key.id, owner: key.owner } : {}),
      ...(!key && secret ? { keyHint: keyHint(secret) } : {}),
    };
    await this.append(
      createEvent(GATEWAY_AUTH_FAILED, 'flowloom/gateway', data, `auth/${attempt.requestId}`),
    );
  }

  async succeeded(attempt: AuthAttempt, key: KeyRecord): Promise<void> {
    const now = this.now();
    const last = this.lastLogin.get(key.id);
    if (last !== undefined && now - last < this.dedupMs) return;
    if (this.lastLogin.size >= 10_000) this.lastLogin.clear();
    this.lastLogin.set(key.id, now);
    const data: AuthSucceeded = {
      ...this.common(attempt),
      keyHint: key.hint,
      keyId: key.id,
      owner: key.owner,
      actor: `key/${key.id} (${key.name})`,
      dedupSeconds: Math.round(this.dedupMs / 1000),
    };
    await this.append(createEvent(GATEWAY_AUTH_SUCCEEDED, 'flowloom/gateway', data, `key/${key.id}`));
  }

  private common(attempt: AuthAttempt): Pick<AuthFailed, 'surface' | 'api' | 'requestId' | 'sourceIp'> {
    return {
      surface: attempt.surface,
      api: attempt.api,
      requestId: attempt.requestId,
      ...(attempt.sourceIp ? { sourceIp: attempt.sourceIp } : {}),
    };
  }

  /** A refused caller gets its own error even if the event cannot be written; the failure is reported. */
  private async append(event: CloudEvent): Promise<void> {
    try {
      await this.outbox.append([event]);
    } catch (error) {
      this.onError(error);
    }
  }
}

import {
  type AuthFailed,
  type AuthSucceeded,
  type CloudEvent,
  createEvent,
  GATEWAY_AUTH_FAILED,
  GATEWAY_AUTH_SUCCEEDED,
} from '@flowloom/contracts';
import { AuthFailureWindows, type FailureSummary } from '../domain/auth-failure-windows.js';
import { hashKey, type KeyRecord, keyHint } from '../domain/keys.js';
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
  'key_suspended',
  'forbidden',
]);

export interface AuthEventsOptions {
  /** An admin key's logins are recorded at most once per this many ms in this process. */
  loginDedupMs?: number;
  /**
   * Refusals of one presented key from one address are recorded one by one at most once per this
   * many ms in this process; the rest of the window are counted and recorded as one event.
   */
  failureWindowMs?: number;
  /** Called when an event cannot be written (the caller still gets its own answer). */
  onError?: (error: unknown) => void;
  now?: () => number;
  /** The events' CloudEvents `source`: the service the key was presented to (default the gateway). */
  source?: string;
}

/**
 * Authentication events for the audit trail, through the outbox like every other event: refused
 * keys, aggregated per presented key and address so that a client hammering with a bad key does not
 * flood the ledger (the first refusal of a window at once, the others as one event with their
 * count when the window closes: see domain/auth-failure-windows.ts), and admin logins at most once
 * per key per `loginDedupMs`. Successful model requests produce nothing here (they already produce
 * request.completed). Only the key's hint (its first characters) is recorded, never the secret.
 * `close()` records what open windows counted.
 */
export class AuthEvents {
  private readonly lastLogin = new Map<string, number>();
  private readonly failures: AuthFailureWindows<AuthFailed>;
  private readonly loginDedupMs: number;
  private readonly onError: (error: unknown) => void;
  private readonly now: () => number;
  private readonly source: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly outbox: Outbox,
    options: AuthEventsOptions = {},
  ) {
    this.loginDedupMs = options.loginDedupMs ?? 15 * 60_000;
    this.failures = new AuthFailureWindows(options.failureWindowMs ?? 60_000);
    this.onError = options.onError ?? (() => {});
    this.now = options.now ?? Date.now;
    this.source = options.source ?? 'flowloom/gateway';
  }

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
      windowSeconds: this.windowSeconds(),
    };
    const verdict = this.failures.observe({
      // Per surface too: a key refused on the model API and on the admin API are two stories.
      fingerprint: `${attempt.surface}:${secret ? hashKey(secret) : ''}`,
      source: attempt.sourceIp ?? '',
      at: this.now(),
      detail: data,
    });
    const events = verdict.closed.map((summary) => this.summaryEvent(summary));
    if (verdict.record) {
      events.push(
        createEvent(
          GATEWAY_AUTH_FAILED,
          this.source,
          verdict.scope === 'key' ? data : { ...data, scope: verdict.scope },
          `auth/${attempt.requestId}`,
        ),
      );
    }
    this.watchWindows();
    await this.append(events);
  }

  /** Records what the open failure windows counted; later refusals are recorded one by one again. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.append(this.failures.closeAll().map((summary) => this.summaryEvent(summary)));
  }

  private windowSeconds(): number {
    return Math.max(1, Math.round(this.failures.windowMs / 1000));
  }

  private summaryEvent(summary: FailureSummary<AuthFailed>): CloudEvent {
    const { keyHint: _hint, keyId: _id, owner: _owner, ...anyKey } = summary.detail;
    const data: AuthFailed = {
      ...(summary.scope === 'key' ? summary.detail : { ...anyKey, scope: summary.scope }),
      count: summary.count,
      firstAt: new Date(summary.firstAt).toISOString(),
      lastAt: new Date(summary.lastAt).toISOString(),
      distinctKeys: Math.max(1, summary.distinctKeys),
    };
    return createEvent(GATEWAY_AUTH_FAILED, this.source, data, `auth/${data.requestId}`);
  }

  /** Closes windows as they end while any is open; no timer runs while none is. */
  private watchWindows(): void {
    if (this.timer || this.failures.openCount === 0) return;
    const tick = Math.max(50, Math.min(this.failures.windowMs / 4, 1_000));
    this.timer = setInterval(() => {
      const due = this.failures.closeDue(this.now());
      if (this.failures.openCount === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
      void this.append(due.map((summary) => this.summaryEvent(summary)));
    }, tick);
    this.timer.unref();
  }

  async succeeded(attempt: AuthAttempt, key: KeyRecord): Promise<void> {
    const now = this.now();
    const last = this.lastLogin.get(key.id);
    if (last !== undefined && now - last < this.loginDedupMs) return;
    if (this.lastLogin.size >= 10_000) this.lastLogin.clear();
    this.lastLogin.set(key.id, now);
    const data: AuthSucceeded = {
      ...this.common(attempt),
      keyHint: key.hint,
      keyId: key.id,
      owner: key.owner,
      actor: `key/${key.id} (${key.name})`,
      dedupSeconds: Math.round(this.loginDedupMs / 1000),
    };
    await this.append([createEvent(GATEWAY_AUTH_SUCCEEDED, this.source, data, `key/${key.id}`)]);
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
  private async append(events: CloudEvent[]): Promise<void> {
    if (events.length === 0) return;
    try {
      await this.outbox.append(events);
    } catch (error) {
      this.onError(error);
    }
  }
}

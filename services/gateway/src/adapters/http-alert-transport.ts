import type { AlertChannelConfig } from '@flowloom/config';
import { parseRetryAfter } from '@flowloom/providers';
import type { AlertAttempt, AlertTransport } from '../ports/alerts.js';

interface Target {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Posts alerts to webhooks over HTTP(S). URLs and header values (from `urlEnv` and `headersEnv`, read
 * once here) stay in this object: outcomes carry a status, `timeout` or an error code only.
 */
export class HttpAlertTransport implements AlertTransport {
  private readonly targets = new Map<string, Target>();

  constructor(
    channels: Readonly<Record<string, AlertChannelConfig>>,
    env: Readonly<Record<string, string | undefined>>,
  ) {
    for (const [name, channel] of Object.entries(channels)) {
      const headers: Record<string, string> = { ...channel.headers };
      for (const [header, variable] of Object.entries(channel.headersEnv))
        headers[header] = env[variable] ?? '';
      const url = channel.url ?? env[channel.urlEnv ?? ''] ?? '';
      this.targets.set(name, { url, headers });
    }
  }

  async post(channel: string, body: string, timeoutMs: number, signal: AbortSignal): Promise<AlertAttempt> {
    const target = this.targets.get(channel);
    if (!target) return { kind: 'connection', code: 'ENOCHANNEL' };
    // Aborted by the dispatcher's shutdown or by this attempt's own timeout, whichever comes first.
    const attempt = new AbortController();
    let timedOut = false;
    const stop = () => attempt.abort();
    signal.addEventListener('abort', stop, { once: true });
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, timeoutMs);
    try {
      const response = await fetch(target.url, {
        method: 'POST',
        headers: { ...target.headers, 'content-type': 'application/json', 'user-agent': 'flowloom-alerts' },
        body,
        signal: attempt.signal,
        redirect: 'manual',
      });
      // The body is not needed; reading it frees the connection for the next post.
      await response.arrayBuffer().catch(() => undefined);
      const retryAfterMs = parseRetryAfter(Object.fromEntries(response.headers));
      return {
        kind: 'http',
        status: response.status,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    } catch (error) {
      if (timedOut) return { kind: 'timeout' };
      return { kind: 'connection', code: errorCode(error) };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
    }
  }
}

/** The system error code of a failed fetch (its cause), never its message: that can hold the address. */
function errorCode(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === 'string' && /^[A-Z0-9_]{2,40}$/.test(cause.code)) return cause.code;
  if ((error as { name?: unknown } | undefined)?.name === 'AbortError') return 'ABORTED';
  return 'EUNKNOWN';
}

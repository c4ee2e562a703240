/**
 * Where alert posts go. The transport alone knows each channel's URL and header values (tokens), so
 * nothing above it (events, logs, errors) can carry them.
 */
export type AlertAttempt =
  | { readonly kind: 'http'; readonly status: number; readonly retryAfterMs?: number }
  | { readonly kind: 'timeout' }
  /** No answer: refused, reset, unknown host. `code` is the system error code (ECONNREFUSED), never an address. */
  | { readonly kind: 'connection'; readonly code: string };

export interface AlertTransport {
  /** One POST of a JSON body to a configured channel; never throws. */
  post(channel: string, body: string, timeoutMs: number, signal: AbortSignal): Promise<AlertAttempt>;
}

export type AlertOutcome = 'delivered' | 'failed' | 'dropped' | 'unconfigured' | 'suppressed';

/** `flowloom_alerts_total{channel,outcome}`. */
export interface AlertMetrics {
  count(channel: string, outcome: AlertOutcome, n?: number): void;
}

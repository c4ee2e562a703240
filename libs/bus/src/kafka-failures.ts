/** kafkajs errors that mean the brokers could not be reached or answered in time. */
const UNREACHABLE = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTimeout',
  'KafkaJSNumberOfRetriesExceeded',
]);

/**
 * Whether an error (or any error it wraps) says the brokers are unreachable or not serving, rather
 * than that a handler failed or a message was refused. Only such failures turn the bus unavailable.
 */
export function isBrokerFailure(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (UNREACHABLE.has(e.name)) return true;
    // A retriable protocol error (no leader, coordinator moving) is a broker restarting or electing.
    if (e.name === 'KafkaJSProtocolError' && (e as { retriable?: boolean }).retriable === true) return true;
    e = e.cause;
  }
  return false;
}

/**
 * Kafka error codes that refuse the records themselves: sending them again, to the same topic, is
 * refused again however long one waits. CORRUPT_MESSAGE is retried by kafkajs first (a bit flipped on
 * the way); it reaches the caller only when every retry was refused.
 */
const MESSAGE_REFUSALS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
]);

/**
 * Why the brokers refused the published records for good (`MESSAGE_TOO_LARGE: ...`), or undefined
 * when the failure is not about the records (brokers unreachable, a retriable election, a bug).
 */
export function messageRefusalOf(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; depth++) {
    const type = (e as { type?: unknown }).type;
    if (e.name === 'KafkaJSProtocolError' && typeof type === 'string' && MESSAGE_REFUSALS.has(type))
      return `${type}: ${e.message}`;
    e = e.cause;
  }
  return undefined;
}

/**
 * Delay before reconnect attempt `failures` (1-based): exponential, capped, with "equal jitter" (half
 * fixed, half random) so that restarted replicas spread out without ever retrying in a tight loop.
 */
export function reconnectDelayMs(
  failures: number,
  options: { minMs: number; maxMs: number } = { minMs: 250, maxMs: 5_000 },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxMs, options.minMs * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** A failure no retry can fix: the brokers refuse a setting (it names the setting to change). */
export function configurationError(message: string): Error {
  return Object.assign(new Error(message), { name: 'KafkaConfigurationError' });
}

export function isConfigurationError(error: unknown): boolean {
  return error instanceof Error && error.name === 'KafkaConfigurationError';
}

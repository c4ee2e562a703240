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

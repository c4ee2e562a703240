/**
 * Delay before retry `attempt` (1-based): full-jitter exponential backoff, capped, but never shorter
 * than a provider's `retry-after` (itself capped, so one slow hint cannot stall a request forever).
 */
export function retryDelayMs(
  attempt: number,
  options: { baseMs: number; maxMs: number },
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** (attempt - 1));
  const jittered = Math.floor(random() * ceiling);
  if (retryAfterMs === undefined) return jittered;
  return Math.min(options.maxMs, Math.max(retryAfterMs, jittered));
}

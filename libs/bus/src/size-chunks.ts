/**
 * Splits `items` in order into runs of at most `maxBytes` by `sizeOf` (an item above it alone in
 * its run), so that one publish never becomes a request the brokers drop unread: Kafka closes the
 * connection on a request above its `socket.request.max.bytes` (100 MB by default), which looks like
 * an outage and would be retried forever.
 */
export function sizeChunks<T>(items: readonly T[], sizeOf: (item: T) => number, maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

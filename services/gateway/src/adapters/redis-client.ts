import type { Redis } from 'ioredis';

/** ioredis is loaded on first use: a gateway without Redis never holds it in memory. */
const ioredis = (): Promise<typeof import('ioredis')> => import('ioredis');

/**
 * A client for the gateway's shared stores. Commands fail at once while Redis is unreachable (no
 * offline queue, one retry), so a fallback can serve meanwhile, and the client keeps reconnecting.
 * Resolves after the first connection attempt, whatever its outcome: a Redis that is up serves the
 * first request, and one that is down does not hold up start-up.
 */
export async function openRedis(url: string): Promise<Redis> {
  const { Redis } = await ioredis();
  const redis = new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 3_000,
    retryStrategy: (times) => Math.min(5_000, 100 * times),
  });
  redis.on('error', () => {}); // reported by the failing command; reconnection is automatic
  await new Promise<void>((resolve) => {
    const settle = (): void => {
      redis.off('ready', settle);
      redis.off('error', settle);
      resolve();
    };
    redis.on('ready', settle);
    redis.on('error', settle);
  });
  return redis;
}

/** Like openRedis, but waits until Redis answers; fails with a message naming the URL (password hidden). */
export async function connectRedis(url: string): Promise<Redis> {
  const { Redis } = await ioredis();
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 3_000,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    const where = url.replace(/\/\/[^@/]*@/, '//***@');
    throw new Error(
      `Cannot reach Redis at ${where}: ${(error as Error).message}. Is it running? (npm run engines:up)`,
    );
  }
  return redis;
}

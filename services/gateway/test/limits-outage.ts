import { expect } from 'vitest';
import type { FallbackLimitStore } from '../src/adapters/fallback-limit-store.js';
import { freePort } from './ports.js';
import { TcpGate } from './tcp-gate.js';

/** The real Redis, reached directly (what the shared store holds) or by replicas through a gate. */
export const TEST_REDIS_URL = new URL(process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');

/** An open gate to the real Redis, and the URL replicas reach it by: cutting it is the outage. */
export async function gatedRedis(): Promise<{ gate: TcpGate; url: string }> {
  const gate = new TcpGate(await freePort(), {
    host: TEST_REDIS_URL.hostname,
    port: Number(TEST_REDIS_URL.port || 6379),
  });
  await gate.open();
  return { gate, url: `redis://127.0.0.1:${gate.port}` };
}

/**
 * Moves the replicas' clock past the back-off (`advance`) until the replica uses Redis again, and
 * has handed over what was counted locally.
 */
export async function untilRecovered(
  store: FallbackLimitStore,
  advance: (ms: number) => void,
): Promise<void> {
  for (let i = 0; i < 50 && store.degraded; i++) {
    advance(1000);
    await store.check();
    if (store.degraded) await new Promise((r) => setTimeout(r, 100));
  }
  expect(await store.check()).toBe('ok');
}

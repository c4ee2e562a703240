import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryThrottleSemaphore } from '../src/adapters/memory-throttle-semaphore.js';
import { RedisThrottleSemaphore } from '../src/adapters/redis-throttle-semaphore.js';
import type { ThrottleSemaphore } from '../src/ports/throttle-semaphore.js';

/** The Redis the contract suite runs against; deploy/engines/redis.sh brings it up. */
const TEST_REDIS_URL = process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Subject {
  name: string;
  /** Two gateway replicas: the same semaphore in-process, two clients on one prefix with Redis. */
  open(): Promise<[ThrottleSemaphore, ThrottleSemaphore]>;
}

const opened: ThrottleSemaphore[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
});

async function redisPair(leaseMs?: number): Promise<[RedisThrottleSemaphore, RedisThrottleSemaphore]> {
  const prefix = `test-${randomBytes(4).toString('hex')}:`;
  const open = () =>
    RedisThrottleSemaphore.connect(TEST_REDIS_URL, {
      prefix,
      pollMs: 10,
      ...(leaseMs ? { leaseMs } : {}),
    }).catch((error: Error) => {
      throw new Error(`Redis not reachable at ${TEST_REDIS_URL}: run npm run engines:up (${error.message})`);
    });
  const pair: [RedisThrottleSemaphore, RedisThrottleSemaphore] = [await open(), await open()];
  opened.push(...pair);
  return pair;
}

const subjects: Subject[] = [
  {
    name: 'in-process',
    open: async () => {
      const s = new MemoryThrottleSemaphore();
      return [s, s];
    },
  },
  { name: 'Redis', open: () => redisPair() },
];

const never = new AbortController().signal;
const req = (subject: string, limit: number, maxWaitMs: number, signal: AbortSignal, explain: string) => ({
  subject,
  limit,
  maxWaitMs,
  signal,
  explain,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}
/** Whether a promise has settled within `ms`. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    sleep(ms).then(() => false),
  ]);
}

describe.each(subjects)('throttle semaphore ($name)', ({ open }) => {
  it('when k turns are held on any replica, then the next request waits until one is released', async () => {
    const [a, b] = await open();
    const r1 = await a.acquire(req('job/x', 2, 5_000, never, 'q'));
    const r2 = await b.acquire(req('job/x', 2, 5_000, never, 'q'));
    const third = a.acquire(req('job/x', 2, 5_000, never, 'q'));
    expect(await settledWithin(third, 150)).toBe(false);
    // Another subject is not held up.
    (await b.acquire(req('job/other', 2, 5_000, never, 'q')))();
    r2();
    const r3 = await third;
    r1();
    r3();
  });

  it('when several wait, then they get their turns in arrival order, across replicas', async () => {
    const [a, b] = await open();
    const first = await a.acquire(req('job/fifo', 1, 5_000, never, 'q'));
    const order: number[] = [];
    // Each arrives once the one before it is in line, whatever the machine's load.
    const waiters: Promise<void>[] = [];
    for (const [i, s] of [a, b, a, b].entries()) {
      waiters.push(
        s.acquire(req('job/fifo', 1, 5_000, never, 'q')).then(async (release) => {
          order.push(i);
          await sleep(5);
          release();
        }),
      );
      await until(async () => (await a.waiting('job/fifo')) === i + 1);
    }
    expect(await b.waiting('job/fifo')).toBe(4);
    first();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3]);
  });

  it('when a request waits its whole limit, then it is refused rate_limited with the reason, and leaves the line', async () => {
    const [a, b] = await open();
    const held = await a.acquire(req('job/slow', 1, 5_000, never, 'q'));
    const started = Date.now();
    await expect(b.acquire(req('job/slow', 1, 200, never, 'Throttled by policy "p"'))).rejects.toMatchObject({
      code: 'rate_limited',
      retryAfterSeconds: 1,
      message: 'Throttled by policy "p": waited 200 ms in the queue without a turn.',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    held();
    // The refused request is no longer in line: the next one gets the free turn at once.
    const next = b.acquire(req('job/slow', 1, 5_000, never, 'q'));
    expect(await settledWithin(next, 500)).toBe(true);
    (await next)();
  });

  it('when a waiting caller goes away, then it is refused and its place passes to the next', async () => {
    const [a, b] = await open();
    const held = await a.acquire(req('job/gone', 1, 5_000, never, 'q'));
    const controller = new AbortController();
    const leaving = b.acquire(req('job/gone', 1, 5_000, controller.signal, 'q'));
    await sleep(50);
    const staying = a.acquire(req('job/gone', 1, 5_000, never, 'q'));
    await sleep(50);
    controller.abort();
    await expect(leaving).rejects.toMatchObject({ code: 'invalid_request' });
    held();
    expect(await settledWithin(staying, 500)).toBe(true);
    (await staying)();
  });

  it('when a turn is released twice, then it frees one turn only', async () => {
    const [a, b] = await open();
    const r1 = await a.acquire(req('job/twice', 1, 5_000, never, 'q'));
    r1();
    const r2 = await b.acquire(req('job/twice', 1, 5_000, never, 'q'));
    r1();
    const third = a.acquire(req('job/twice', 1, 5_000, never, 'q'));
    expect(await settledWithin(third, 150)).toBe(false);
    r2();
    (await third)();
  });

  it('when many requests of one job race on both replicas, then never more than k run at once', async () => {
    const [a, b] = await open();
    let running = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const release = await (i % 2 ? a : b).acquire(req('job/race', 3, 20_000, never, 'q'));
        running++;
        most = Math.max(most, running);
        await sleep(5 + (i % 4) * 5);
        running--;
        release();
      }),
    );
    expect(most).toBe(3);
  });
});

describe('throttle semaphore (Redis) when a gateway dies', () => {
  it('then the turns it held expire after the lease and a waiter on another replica gets one', async () => {
    const [dying, alive] = await redisPair(300);
    await dying.acquire(req('job/orphan', 1, 5_000, never, 'q')); // never released
    await dying.close(); // the gateway is gone: no release, no renewal
    const started = Date.now();
    const release = await alive.acquire(req('job/orphan', 1, 5_000, never, 'q'));
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(200);
    expect(waited).toBeLessThan(3_000);
    release();
  });

  it('then a turn held longer than the lease by a live gateway is renewed, not lost', async () => {
    const [holder, other] = await redisPair(300);
    const release = await holder.acquire(req('job/long', 1, 5_000, never, 'q'));
    await sleep(900); // three leases long
    await expect(other.acquire(req('job/long', 1, 100, never, 'q'))).rejects.toMatchObject({
      code: 'rate_limited',
    });
    release();
  });
});

import { randomBytes } from 'node:crypto';
import { createEvent } from '@flowloom/contracts';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConsumerLag } from './consumer-lag.js';
import { KafkaBus } from './kafka.js';
import { deleteTopicsUnder } from './test-topics.js';

// Consumer lag read from the real broker: a group whose handler is held back falls behind by what was
// published, and is back to 0 once it has caught up and committed.
const BROKERS = (process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const topicPrefix = `lag-${randomBytes(4).toString('hex')}`;
const GROUP = 'lag-test';
const TOPIC = `${topicPrefix}.gateway.request`;
const closers: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
  await deleteTopicsUnder(topicPrefix, BROKERS);
}, 60_000);

const total = (lag: readonly ConsumerLag[], topic: string) =>
  lag.filter((l) => l.topic === topic).reduce((sum, l) => sum + l.messages, 0);

async function lagUntil(bus: KafkaBus, what: string, ok: (messages: number) => boolean): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const messages = total(await bus.sampleLag(), TOPIC);
    if (ok(messages)) return messages;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for the lag to ${what} (last: ${messages})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('KafkaBus consumer lag', () => {
  it('when a group is held back, then its lag grows by what is published, and returns to 0 once it caught up', {
    timeout: 90_000,
  }, async () => {
    const bus = new KafkaBus({ brokers: BROKERS, clientId: topicPrefix, topicPrefix, partitions: 2 });
    closers.push(() => bus.close());
    await bus.start();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const seen = new Set<string>();
    await bus.subscribeBatch(GROUP, async (events) => {
      await held;
      for (const e of events) seen.add(e.id);
    });
    const event = (n: number) =>
      createEvent('dev.flowloom.gateway.request.completed.v1', 'flowloom/gateway', { n }, `job-${n % 4}`);

    await bus.publish(Array.from({ length: 10 }, (_, n) => event(n)));
    expect(await lagUntil(bus, 'reach 10', (m) => m === 10)).toBe(10);
    await bus.publish(Array.from({ length: 15 }, (_, n) => event(10 + n)));
    expect(await lagUntil(bus, 'grow to 25', (m) => m === 25)).toBe(25);
    // One series per partition of every topic under the prefix, under the group's Kafka id.
    const reading = bus.health().lag ?? [];
    expect(
      reading
        .filter((l) => l.topic === TOPIC)
        .map((l) => l.partition)
        .sort(),
    ).toEqual([0, 1]);
    expect(new Set(reading.map((l) => l.group))).toEqual(new Set([`${topicPrefix}.${GROUP}`]));

    release();
    expect(await lagUntil(bus, 'return to 0', (m) => m === 0)).toBe(0);
    expect(seen.size).toBe(25);
    expect(total(bus.health().lag ?? [], TOPIC)).toBe(0);
  });

  it('when a group handles some event types, then it reads only their families: other events neither reach it nor count as its lag', {
    timeout: 90_000,
  }, async () => {
    const bus = new KafkaBus({
      brokers: BROKERS,
      clientId: `${topicPrefix}-narrow`,
      topicPrefix,
      partitions: 2,
    });
    closers.push(() => bus.close());
    await bus.start();
    const decision = 'dev.flowloom.policy.decision.v1';
    const seen: string[] = [];
    await bus.subscribeBatch(
      'narrow',
      async (events) => {
        for (const e of events) seen.push(e.type);
      },
      [decision],
    );
    await bus.publish([
      createEvent('dev.flowloom.gateway.request.completed.v1', 'flowloom/gateway', { n: 1 }, 'job-1'),
      createEvent(decision, 'flowloom/gateway', { n: 2 }, 'job-1'),
    ]);
    const deadline = Date.now() + 30_000;
    while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([decision]);
    const lag = await bus.sampleLag();
    const narrow = lag.filter((l) => l.group === `${topicPrefix}.narrow`);
    expect(new Set(narrow.map((l) => l.topic))).toEqual(new Set([`${topicPrefix}.policy.decision`]));
  });
});

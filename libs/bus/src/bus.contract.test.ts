import { randomBytes } from 'node:crypto';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventBus } from './bus.js';
import { InProcessBus } from './in-process.js';
import { KafkaBus } from './kafka.js';
import { fromKafkaRecord, toKafkaRecord, topicFor } from './kafka-binding.js';

const BROKERS = (process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const open: EventBus[] = [];
afterAll(async () => {
  for (const bus of open) await bus.close();
});

async function waitFor(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting for deliveries');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const subjects: Array<{ name: string; make: () => Promise<EventBus> }> = [
  { name: 'in-process', make: async () => new InProcessBus() },
  {
    name: 'Kafka',
    make: async () => {
      const bus = new KafkaBus({ brokers: BROKERS, clientId: `test-${randomBytes(3).toString('hex')}` });
      await bus.start().catch((error: Error) => {
        throw new Error(
          `Kafka not reachable at ${BROKERS.join(',')}: run npm run engines:up (${error.message})`,
        );
      });
      open.push(bus);
      return bus;
    },
  },
];

for (const subject of subjects) {
  describe(`EventBus contract: ${subject.name}`, () => {
    it('when a job publishes events, then a group receives them in order with attributes intact', {
      timeout: 60_000,
    }, async () => {
      const bus = await subject.make();
      const job = `job/${randomBytes(4).toString('hex')}`;
      const received: CloudEvent[] = [];
      await bus.subscribe(`contract-${randomBytes(4).toString('hex')}`, async (event) => {
        if (event.subject === job) received.push(event);
      });
      const sent = Array.from({ length: 20 }, (_, i) =>
        createEvent(
          'dev.flowloom.gateway.request.completed.v1',
          'flowloom/gateway',
          { n: i, text: 'héllo' },
          job,
        ),
      );
      await bus.publish(sent.slice(0, 10));
      await bus.publish(sent.slice(10));
      await waitFor(() => received.length >= 20);
      expect(received.map((e) => e.id)).toEqual(sent.map((e) => e.id));
      expect(received[3]).toEqual(sent[3]);
    });

    it('when a batch subscriber is attached, then it receives the matching events in order, several per call', {
      timeout: 60_000,
    }, async () => {
      const bus = await subject.make();
      const job = `job/${randomBytes(4).toString('hex')}`;
      const received: CloudEvent[] = [];
      let calls = 0;
      await bus.subscribeBatch?.(
        `contract-batch-${randomBytes(4).toString('hex')}`,
        async (events) => {
          const mine = events.filter((e) => e.subject === job);
          if (mine.length > 0) calls++;
          received.push(...mine);
        },
        ['dev.flowloom.gateway.'],
      );
      const sent = Array.from({ length: 30 }, (_, i) =>
        createEvent(
          i % 3 === 2 ? 'dev.flowloom.policy.decision.v1' : 'dev.flowloom.gateway.request.completed.v1',
          i % 3 === 2 ? 'flowloom/policy' : 'flowloom/gateway',
          { n: i },
          job,
        ),
      );
      await bus.publish(sent);
      const wanted = sent.filter((e) => e.type.startsWith('dev.flowloom.gateway.'));
      await waitFor(() => received.length >= wanted.length);
      expect(received.map((e) => e.id)).toEqual(wanted.map((e) => e.id));
      expect(calls).toBeLessThan(wanted.length);
    });
  });
}

describe('CloudEvents Kafka binding', () => {
  it('when an event goes through a record and back, then it is unchanged', () => {
    const event = createEvent(
      'dev.flowloom.policy.decision.made.v1',
      'flowloom/policy',
      { a: [1, 'x'] },
      'key/1',
    );
    const record = toKafkaRecord(event);
    expect(record.key).toBe('key/1');
    expect(record.headers.ce_type).toBe(event.type);
    const headers = Object.fromEntries(Object.entries(record.headers).map(([k, v]) => [k, Buffer.from(v)]));
    expect(fromKafkaRecord(headers, Buffer.from(record.value))).toEqual(event);
    expect(fromKafkaRecord({}, Buffer.from('{}'))).toBeUndefined();
  });

  it('when a type is mapped to a topic, then its family names it', () => {
    expect(topicFor('dev.flowloom.gateway.request.completed.v1')).toBe('flowloom.gateway.request');
    expect(topicFor('something.else')).toBe('flowloom.other');
  });
});

describe('KafkaBus delivery', () => {
  it('when a handler fails, then the offset is not committed and the event is delivered again', {
    timeout: 90_000,
  }, async () => {
    const bus = await subjects[1]!.make();
    const job = `job/${randomBytes(4).toString('hex')}`;
    const attempts = new Map<string, number>();
    const done: string[] = [];
    await bus.subscribe(`redeliver-${randomBytes(4).toString('hex')}`, async (event) => {
      if (event.subject !== job) return;
      const n = (attempts.get(event.id) ?? 0) + 1;
      attempts.set(event.id, n);
      if (n === 1 && (event.data as { n: number }).n === 1) throw new Error('disk full');
      if (!done.includes(event.id)) done.push(event.id);
    });
    const sent = [0, 1, 2].map((n) =>
      createEvent('dev.flowloom.gateway.request.completed.v1', 'flowloom/gateway', { n }, job),
    );
    await bus.publish(sent);
    await waitFor(() => done.length >= 3, 60_000);
    expect(done).toEqual(sent.map((e) => e.id));
    expect(attempts.get(sent[1]!.id)).toBeGreaterThanOrEqual(2);
  });

  for (const mode of ['subscribe', 'subscribeBatch'] as const) {
    it(`when a ${mode} group has handled events and restarts, then it resumes after them (offsets committed)`, {
      timeout: 90_000,
    }, async () => {
      const topicPrefix = `resume-${randomBytes(4).toString('hex')}`;
      const group = 'ledger';
      const job = `job/${randomBytes(4).toString('hex')}`;
      const attach = async (received: string[]): Promise<KafkaBus> => {
        const bus = new KafkaBus({ brokers: BROKERS, clientId: topicPrefix, topicPrefix });
        await bus.start();
        const keep = (event: CloudEvent): void => {
          if (event.subject === job) received.push(event.id);
        };
        if (mode === 'subscribe') await bus.subscribe(group, async (event) => keep(event));
        else await bus.subscribeBatch(group, async (events) => events.forEach(keep));
        return bus;
      };
      const event = (n: number) =>
        createEvent('dev.flowloom.gateway.request.completed.v1', 'flowloom/gateway', { n }, job);

      const first: string[] = [];
      const before = await attach(first);
      const old = [event(0), event(1), event(2)];
      await before.publish(old);
      await waitFor(() => first.length >= 3, 60_000);
      await before.close();

      // Same group, new member: only what was published since reaches it, in the subject's partition order.
      const second: string[] = [];
      const after = await attach(second);
      open.push(after);
      const fresh = event(3);
      await after.publish([fresh]);
      await waitFor(() => second.length >= 1, 60_000);
      expect(second).toEqual([fresh.id]);
    });
  }
});

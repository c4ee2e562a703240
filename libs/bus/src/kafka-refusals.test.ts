import { randomBytes } from 'node:crypto';
import { type CloudEvent, createEvent, GATEWAY_REQUEST_COMPLETED } from '@flowloom/contracts';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KafkaBus } from './kafka.js';
import { EventsRefusedError } from './refused-events.js';
import { deleteTopicsUnder } from './test-topics.js';

// The real broker refuses a record above the topic's max.message.bytes, per partition of a produce
// request while it appends the others: the bus must name only the refused event, and keep publishing
// on every partition afterwards (kafkajs rolled back the sequence numbers of partitions the broker
// had appended; a producer that kept them would be refused as out of order from then on).

const BROKERS = (process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const prefix = `refusals-test-${randomBytes(4).toString('hex')}`;

const event = (subject: string, n: number, prompt = 'hi'): CloudEvent =>
  createEvent(GATEWAY_REQUEST_COMPLETED, 'flowloom/gateway', { n, inputs: { prompt } }, subject);

describe('KafkaBus publishing a record the broker refuses for good', { timeout: 120_000 }, () => {
  let bus: KafkaBus;
  const received: CloudEvent[] = [];

  beforeAll(async () => {
    const admin = new Kafka({ clientId: prefix, brokers: BROKERS, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic: `${prefix}.gateway.request`,
          numPartitions: 3,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: '4096' }],
        },
      ],
    });
    await admin.disconnect();
    bus = new KafkaBus({ brokers: BROKERS, clientId: prefix, topicPrefix: prefix, partitions: 3 });
    await bus.start();
    await bus.subscribe('reader', async (e) => {
      received.push(e);
    });
    await vi.waitFor(() => expect(bus.health().consumers).toEqual({ reader: 'consuming' }), {
      timeout: 60_000,
    });
  });

  afterAll(async () => {
    await bus?.close();
    await deleteTopicsUnder(prefix, BROKERS);
  });

  it('when one event of a batch over several partitions is too large, then only it is refused, and later batches reach every partition in order', async () => {
    const subjects = ['job/a', 'job/b', 'job/c', 'job/d', 'job/e', 'job/f'];
    const big = event('job/c', 99, 'x'.repeat(20_000));
    const first = [...subjects.map((s) => event(s, 1)), big];
    const refusal = await bus.publish(first).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(EventsRefusedError);
    expect((refusal as EventsRefusedError).refused).toEqual([
      { id: big.id, type: big.type, reason: expect.stringMatching(/^MESSAGE_TOO_LARGE: /) },
    ]);
    expect(bus.health().state).toBe('connected');

    const second = subjects.map((s) => event(s, 2));
    await bus.publish(second);

    await vi.waitFor(() => expect(new Set(received.map((e) => e.id)).size).toBe(12), { timeout: 30_000 });
    expect(received.some((e) => e.id === big.id)).toBe(false);
    // Per subject (one partition each), the first event before the second; a resend is a duplicate id.
    for (const s of subjects) {
      const ns = [...new Map(received.filter((e) => e.subject === s).map((e) => [e.id, e])).values()].map(
        (e) => (e.data as { n: number }).n,
      );
      expect(ns).toEqual([1, 2]);
    }
  });
});

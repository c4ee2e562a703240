import { randomBytes } from 'node:crypto';
import type { CloudEvent } from '@flowloom/contracts';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { KafkaBus } from './kafka.js';
import { deleteTopicsUnder } from './test-topics.js';

/** A real Kafka whose topics refuse large records, for tests of what a relay does then. */
export interface LimitedKafka {
  bus: KafkaBus;
  /** Every event a consumer group of its own received, in order of arrival. */
  received: CloudEvent[];
  /** `<prefix>.<family>`: the topic of an event family under this bus's prefix. */
  topic(family: string): string;
  /** What an operator does once the cause is known: raise the topic's limit to Kafka's default. */
  raiseLimit(family: string): Promise<void>;
  /** Sets the topic's `max.message.bytes`; the broker applies it shortly after the call returns. */
  setLimit(family: string, maxMessageBytes: number): Promise<void>;
  close(): Promise<void>;
}

const BROKERS = (process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

/**
 * A KafkaBus under a prefix of its own, started, whose `families` topics (e.g. `gateway.request`)
 * were created with one partition (the order they hold is the order published) and
 * `max.message.bytes` = `maxMessageBytes`, and a consumer group recording every event.
 */
export async function kafkaWithLimitedTopics(
  name: string,
  families: readonly string[],
  maxMessageBytes: number,
): Promise<LimitedKafka> {
  const prefix = `${name}-${randomBytes(4).toString('hex')}`;
  const topic = (family: string) => `${prefix}.${family}`;
  const admin = new Kafka({ clientId: prefix, brokers: BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect().catch((error: Error) => {
    throw new Error(`Kafka not reachable at ${BROKERS.join(',')}: run npm run engines:up (${error.message})`);
  });
  await admin.createTopics({
    waitForLeaders: true,
    topics: families.map((family) => ({
      topic: topic(family),
      numPartitions: 1,
      replicationFactor: 1,
      configEntries: [{ name: 'max.message.bytes', value: String(maxMessageBytes) }],
    })),
  });
  const bus = new KafkaBus({ brokers: BROKERS, clientId: prefix, topicPrefix: prefix, partitions: 1 });
  await bus.start();
  const received: CloudEvent[] = [];
  await bus.subscribe('recorder', async (event) => {
    received.push(event);
  });
  for (let i = 0; bus.health().consumers.recorder !== 'consuming'; i++) {
    if (i > 600) throw new Error('the recording consumer did not join its group within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const setLimit = async (family: string, maxMessageBytes: number) => {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic(family),
          configEntries: [{ name: 'max.message.bytes', value: String(maxMessageBytes) }],
        },
      ],
    });
  };
  return {
    bus,
    received,
    topic,
    setLimit,
    raiseLimit: (family) => setLimit(family, 1048588),
    close: async () => {
      await bus.close();
      await admin.disconnect();
      await deleteTopicsUnder(prefix, BROKERS);
    },
  };
}

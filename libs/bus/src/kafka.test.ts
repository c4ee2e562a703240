import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from './kafka.js';

// Topic creation against the real broker (one KRaft node here, see deploy/engines/kafka.sh).
const BROKERS = (process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const admin = new Kafka({
  clientId: 'kafka-topics-test',
  brokers: BROKERS,
  logLevel: logLevel.NOTHING,
}).admin();
const created: string[] = [];
let connected = false;

async function connectAdmin(): Promise<void> {
  if (connected) return;
  await admin.connect().catch((error: Error) => {
    throw new Error(`Kafka not reachable at ${BROKERS.join(',')}: run npm run engines:up (${error.message})`);
  });
  connected = true;
}

afterAll(async () => {
  if (!connected) return;
  const existing = new Set(await admin.listTopics());
  const mine = created.filter((t) => existing.has(t));
  if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  await admin.disconnect();
});

/** A prefix of this test's own, so that nothing it creates is seen by other buses on the broker. */
const prefix = () => `topics-test-${randomBytes(4).toString('hex')}`;

describe('KafkaBus topic creation', () => {
  it('when partitions and a prefix are configured, then the families are created under the prefix with that many partitions', {
    timeout: 60_000,
  }, async () => {
    await connectAdmin();
    const topicPrefix = prefix();
    const bus = new KafkaBus({
      brokers: BROKERS,
      clientId: topicPrefix,
      partitions: 3,
      replicationFactor: 1,
      topicPrefix,
    });
    try {
      await bus.start();
    } finally {
      await bus.close();
    }
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${topicPrefix}.`));
    created.push(...mine);
    expect(mine).toContain(`${topicPrefix}.gateway.request`);
    const { topics } = await admin.fetchTopicMetadata({ topics: mine });
    for (const topic of topics) {
      expect(topic.partitions, topic.name).toHaveLength(3);
      for (const partition of topic.partitions) expect(partition.replicas).toHaveLength(1);
    }
  });

  // In the background too: retrying cannot fix a setting, so a service must stop at start, saying so.
  for (const start of ['start', 'startInBackground'] as const) {
    it(`when the replication factor exceeds the brokers, then ${start}() fails naming the factor, the broker count and the setting, and creates nothing`, {
      timeout: 60_000,
    }, async () => {
      await connectAdmin();
      const brokers = (await admin.describeCluster()).brokers.length;
      const topicPrefix = prefix();
      const bus = new KafkaBus({
        brokers: BROKERS,
        clientId: topicPrefix,
        replicationFactor: brokers + 2,
        topicPrefix,
      });
      try {
        const error = await bus[start]().then(
          () => undefined,
          (e: Error) => e,
        );
        expect(error?.message).toContain(`replication factor ${brokers + 2}`);
        expect(error?.message).toContain(`has ${brokers} broker(s)`);
        expect(error?.message).toContain('FLOWLOOM_KAFKA_REPLICATION_FACTOR');
        expect(error?.message).not.toContain('Cannot reach Kafka');
      } finally {
        await bus.close();
      }
      const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${topicPrefix}.`));
      created.push(...mine);
      expect(mine).toEqual([]);
    });
  }

  it('when a prefix holds a dot, then the bus refuses it (its pattern would match other prefixes)', () => {
    expect(() => new KafkaBus({ brokers: BROKERS, clientId: 'x', topicPrefix: 'flowloom.staging' })).toThrow(
      /letters, digits, _ and -/,
    );
  });
});

import { type CloudEvent, eventPayloadSchemas } from '@flowloom/contracts';
import { type Consumer, Kafka, logLevel, type Producer } from 'kafkajs';
import type { BatchEventHandler, EventBus, EventHandler } from './bus.js';
import { fromKafkaRecord, toKafkaRecord, topicFor } from './kafka-binding.js';

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  /** Topics to create at start, so that pattern subscriptions see them; the known event families by default. */
  topics?: string[];
  partitions?: number;
  replicationFactor?: number;
}

const ALL_TOPICS = /^flowloom\..+/;

function knownTopics(): string[] {
  return [...new Set(Object.keys(eventPayloadSchemas).map(topicFor))];
}

/**
 * Events on Kafka. Publishing uses an idempotent producer with acks from all in-sync replicas;
 * consuming commits an offset only after the handler resolved, so an event whose effect was not
 * durable is delivered again (handlers deduplicate by event id).
 */
export class KafkaBus implements EventBus {
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private readonly consumers: Consumer[] = [];
  private readonly knownTopics = new Set<string>();

  constructor(private readonly options: KafkaBusOptions) {
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
  }

  /** Connects the producer and creates the configured topics; fails with the brokers named. */
  async start(): Promise<void> {
    try {
      this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await this.producer.connect();
      await this.ensureTopics(this.options.topics ?? knownTopics());
    } catch (error) {
      throw new Error(
        `Cannot reach Kafka at ${this.options.brokers.join(',')}: ${(error as Error).message}. Is it running? (npm run engines:up)`,
      );
    }
  }

  private async ensureTopics(topics: readonly string[]): Promise<void> {
    const missing = topics.filter((t) => !this.knownTopics.has(t));
    if (missing.length === 0) return;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: this.options.partitions ?? 6,
          replicationFactor: this.options.replicationFactor ?? 1,
        })),
      });
    } finally {
      await admin.disconnect();
    }
    for (const t of missing) this.knownTopics.add(t);
  }

  async publish(events: readonly CloudEvent[]): Promise<void> {
    if (!this.producer) throw new Error('KafkaBus.start() was not called');
    const byTopic = new Map<string, CloudEvent[]>();
    for (const event of events) {
      const topic = topicFor(event.type);
      const list = byTopic.get(topic);
      if (list) list.push(event);
      else byTopic.set(topic, [event]);
    }
    await this.ensureTopics([...byTopic.keys()]);
    await this.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list.map(toKafkaRecord) })),
    });
  }

  async subscribe(group: string, handler: EventHandler, types?: readonly string[]): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: group,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
    });
    await consumer.connect();
    // A pattern subscription sees the topics that exist now: `start()` creates the known families.
    await consumer.subscribe({ topics: [ALL_TOPICS], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({
        batch,
        resolveOffset,
        heartbeat,
        commitOffsetsIfNecessary,
        isRunning,
        isStale,
      }) => {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break;
          const event = fromKafkaRecord(message.headers ?? {}, message.value);
          if (event && (!types || types.some((t) => event.type.startsWith(t)))) await handler(event);
          resolveOffset(message.offset);
          await heartbeat();
        }
        // Only offsets of handled messages are committed: a crash re-delivers the rest.
        await commitOffsetsIfNecessary();
      },
    });
    this.consumers.push(consumer);
  }

  async subscribeBatch(group: string, handler: BatchEventHandler, types?: readonly string[]): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: group,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [ALL_TOPICS], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({
        batch,
        resolveOffset,
        heartbeat,
        commitOffsetsIfNecessary,
        isRunning,
        isStale,
      }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const events: CloudEvent[] = [];
        for (const message of batch.messages) {
          const event = fromKafkaRecord(message.headers ?? {}, message.value);
          if (event && (!types || types.some((t) => event.type.startsWith(t)))) events.push(event);
        }
        if (events.length > 0) await handler(events);
        // The whole fetch is handled: commit past its last message. A failure above commits nothing.
        resolveOffset((batch.messages[batch.messages.length - 1] as { offset: string }).offset);
        await heartbeat();
        await commitOffsetsIfNecessary();
      },
    });
    this.consumers.push(consumer);
  }

  async close(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.disconnect()));
    await this.producer?.disconnect();
  }
}

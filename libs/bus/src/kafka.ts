import { type CloudEvent, eventPayloadSchemas } from '@flowloom/contracts';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import type { BatchEventHandler, EventBus, EventHandler } from './bus.js';
import { DEFAULT_TOPIC_PREFIX, fromKafkaRecord, toKafkaRecord, topicFor } from './kafka-binding.js';

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  /** Topics to create at start, so that pattern subscriptions see them; the known event families by default. */
  topics?: string[];
  /** Partitions of each topic this bus creates (6 by default); topics that exist are left as they are. */
  partitions?: number;
  /** Copies of each partition on different brokers (1 by default, for one broker; 3 in production). */
  replicationFactor?: number;
  /**
   * First part of every topic name (`flowloom` by default: `flowloom.gateway.request`). Letters,
   * digits, `_` and `-`: a dot would let one prefix's pattern subscription match another's topics.
   */
  topicPrefix?: string;
}

const TOPIC_PREFIX = /^[A-Za-z0-9_-]+$/;

/**
 * Events on Kafka. Publishing uses an idempotent producer with acks from all in-sync replicas;
 * consuming commits an offset only after the handler resolved, so an event whose effect was not
 * durable is delivered again (handlers deduplicate by event id).
 */
export class KafkaBus implements EventBus {
  private kafka: Promise<Kafka> | undefined;
  private producer: Producer | undefined;
  private readonly consumers: Consumer[] = [];
  private readonly knownTopics = new Set<string>();
  private readonly prefix: string;

  constructor(private readonly options: KafkaBusOptions) {
    this.prefix = options.topicPrefix ?? DEFAULT_TOPIC_PREFIX;
    if (!TOPIC_PREFIX.test(this.prefix))
      throw new Error(`Kafka topic prefix "${this.prefix}" may hold only letters, digits, _ and -`);
  }

  /** kafkajs is loaded on first use: a process on the in-process bus never holds it in memory. */
  private client(): Promise<Kafka> {
    this.kafka ??= import('kafkajs').then(
      ({ Kafka, logLevel }) =>
        new Kafka({
          clientId: this.options.clientId,
          brokers: this.options.brokers,
          logLevel: logLevel.NOTHING,
          retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 5_000 },
        }),
    );
    return this.kafka;
  }

  /** The topic of an event type under this bus's prefix. */
  topicFor(type: string): string {
    return topicFor(type, this.prefix);
  }

  /** Connects the producer and creates the configured topics; fails with the brokers named. */
  async start(): Promise<void> {
    try {
      this.producer = (await this.client()).producer({ idempotent: true, maxInFlightRequests: 1 });
      await this.producer.connect();
    } catch (error) {
      throw new Error(
        `Cannot reach Kafka at ${this.options.brokers.join(',')}: ${(error as Error).message}. Is it running? (npm run engines:up)`,
      );
    }
    await this.ensureTopics(
      this.options.topics ?? [...new Set(Object.keys(eventPayloadSchemas).map((t) => this.topicFor(t)))],
    );
  }

  private async ensureTopics(topics: readonly string[]): Promise<void> {
    const missing = topics.filter((t) => !this.knownTopics.has(t));
    if (missing.length === 0) return;
    const replicationFactor = this.options.replicationFactor ?? 1;
    const admin = (await this.client()).admin();
    await admin.connect();
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: this.options.partitions ?? 6,
          replicationFactor,
        })),
      });
    } catch (error) {
      throw await this.explainTopicError(admin, error, missing, replicationFactor);
    } finally {
      await admin.disconnect();
    }
    for (const t of missing) this.knownTopics.add(t);
  }

  /** Kafka only says "Replication-factor is invalid": name the cluster's size and the setting to change. */
  private async explainTopicError(
    admin: ReturnType<Kafka['admin']>,
    error: unknown,
    topics: readonly string[],
    replicationFactor: number,
  ): Promise<Error> {
    const causes = (error as { errors?: Array<{ type?: string }> }).errors ?? [error as { type?: string }];
    if (!causes.some((c) => c?.type === 'INVALID_REPLICATION_FACTOR')) return error as Error;
    const count = await admin
      .describeCluster()
      .then((c) => c.brokers.length)
      .catch(() => undefined);
    const brokers = count === undefined ? 'too few brokers' : `${count} broker(s)`;
    return new Error(
      `Cannot create Kafka topics ${topics.join(', ')} with replication factor ${replicationFactor}: the cluster at ${this.options.brokers.join(',')} has ${brokers}, and each copy needs a broker of its own. Fix: set FLOWLOOM_KAFKA_REPLICATION_FACTOR (kafkaTopics.replicationFactor) to at most the number of brokers, or add brokers.`,
    );
  }

  /** A consumer of every topic under this bus's prefix, joined to `group`. */
  private async consumerFor(group: string): Promise<Consumer> {
    const consumer = (await this.client()).consumer({
      // Groups are per prefix too: members of one group must subscribe alike. The default prefix keeps
      // the plain names, so an existing install resumes from its committed offsets.
      groupId: this.prefix === DEFAULT_TOPIC_PREFIX ? group : `${this.prefix}.${group}`,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
    });
    await consumer.connect();
    // A pattern subscription sees the topics that exist now: `start()` creates the known families.
    await consumer.subscribe({ topics: [new RegExp(`^${this.prefix}\\..+`)], fromBeginning: true });
    return consumer;
  }

  async publish(events: readonly CloudEvent[]): Promise<void> {
    if (!this.producer) throw new Error('KafkaBus.start() was not called');
    const byTopic = new Map<string, CloudEvent[]>();
    for (const event of events) {
      const topic = this.topicFor(event.type);
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
    const consumer = await this.consumerFor(group);
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({
        batch,
        resolveOffset,
        heartbeat,
        commitOffsetsIfNecessary,
        uncommittedOffsets,
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
        // Only offsets of handled messages are committed: a crash re-delivers the rest. They are
        // passed explicitly: with autoCommit off, kafkajs commits nothing unless told what.
        await commitOffsetsIfNecessary(uncommittedOffsets());
      },
    });
    this.consumers.push(consumer);
  }

  async subscribeBatch(group: string, handler: BatchEventHandler, types?: readonly string[]): Promise<void> {
    const consumer = await this.consumerFor(group);
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({
        batch,
        resolveOffset,
        heartbeat,
        commitOffsetsIfNecessary,
        uncommittedOffsets,
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
        await commitOffsetsIfNecessary(uncommittedOffsets());
      },
    });
    this.consumers.push(consumer);
  }

  async close(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.disconnect()));
    await this.producer?.disconnect();
  }
}

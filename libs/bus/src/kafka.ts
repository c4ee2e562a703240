import { type CloudEvent, eventPayloadSchemas } from '@flowloom/contracts';
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { BatchEventHandler, BusHealth, EventBus, EventHandler } from './bus.js';
import { type ConsumerLag, lagOf } from './consumer-lag.js';
import {
  DEFAULT_TOPIC_PREFIX,
  fromKafkaRecord,
  type KafkaRecord,
  toKafkaRecord,
  topicFor,
} from './kafka-binding.js';
import {
  configurationError,
  isBrokerFailure,
  isConfigurationError,
  messageRefusalOf,
  reconnectDelayMs,
} from './kafka-failures.js';
import { EventsRefusedError, type RefusedEvent, sendIsolatingRefused } from './refused-events.js';
import { sizeChunks } from './size-chunks.js';

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
  /** Back-off between attempts to reach the brokers while they are unreachable (250 ms to 5 s by default). */
  reconnect?: { minMs: number; maxMs: number };
  /** How often a connected bus checks that the brokers still answer (5 s by default). */
  healthCheckMs?: number;
  /**
   * How often a bus with consumer groups reads their lag (log end minus committed offset per
   * partition) for `health().lag`: one admin round trip per topic and one per group (5 s by default).
   */
  lagSampleMs?: number;
}

const TOPIC_PREFIX = /^[A-Za-z0-9_-]+$/;

/** A consumer group of this process: started now, or once the brokers are reachable. */
/**
 * A fetch waits for this much data or this long, whichever comes first. Returning at the first byte
 * made each group fetch (and commit) about once per published batch: broker CPU per request. The wait
 * bounds what it adds to an event's way into the ledger.
 */
const FETCH_MIN_BYTES = 64 * 1024;
const FETCH_MAX_WAIT_MS = 100;

/** A publish is sent in produce requests of about this size at most (see sizeChunks). */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** What a record's attributes (ce_ headers) and framing add to its key and value, about. */
const RECORD_OVERHEAD_BYTES = 256;

interface Subscription {
  group: string;
  /** The event types (or type prefixes) the group handles; every type when absent. */
  types?: readonly string[];
  run(consumer: Consumer): Promise<void>;
  consumer?: Consumer;
}

/**
 * Events on Kafka. Publishing uses an idempotent producer with acks from all in-sync replicas;
 * consuming commits an offset only after the handler resolved, so an event whose effect was not
 * durable is delivered again (handlers deduplicate by event id).
 *
 * Brokers come and go: `startInBackground()` lets a service start while Kafka is down. Until the
 * brokers answer (and after a connection is lost), `publish` fails at once naming the outage, so the
 * caller's outbox keeps the events; subscriptions wait and join their groups once Kafka is back.
 */
export class KafkaBus implements EventBus {
  private kafka: Promise<Kafka> | undefined;
  private probeKafka: Promise<Kafka> | undefined;
  private producer: Producer | undefined;
  /** Sends on their way per producer, so that a renewed producer's predecessor finishes them first. */
  private readonly sending = new Map<Producer, Set<Promise<unknown>>>();
  private readonly subscriptions: Subscription[] = [];
  private readonly consumerStatus = new Map<string, string>();
  private readonly knownTopics = new Set<string>();
  private readonly prefix: string;
  private readonly connectedListeners = new Set<() => void>();
  /** `idle` until start() or startInBackground(): then outages are ridden out instead of thrown. */
  private mode: 'idle' | 'strict' | 'background' = 'idle';
  private state: BusHealth['state'] = 'connecting';
  private since = Date.now();
  private reason: string | undefined;
  /** Failed attempts (or losses) since events last flowed: the back-off grows with it. */
  private failures = 0;
  private supervisor: Promise<void> | undefined;
  private cancelPause: (() => void) | undefined;
  private settleFirstAttempt: ((error: unknown) => void) | undefined;
  private watch: ReturnType<typeof setInterval> | undefined;
  private lagTimer: ReturnType<typeof setInterval> | undefined;
  /** The last lag reading of this process's groups; kept while the brokers are away. */
  private lag: readonly ConsumerLag[] = [];
  private closed = false;

  constructor(private readonly options: KafkaBusOptions) {
    this.prefix = options.topicPrefix ?? DEFAULT_TOPIC_PREFIX;
    if (!TOPIC_PREFIX.test(this.prefix))
      throw new Error(`Kafka topic prefix "${this.prefix}" may hold only letters, digits, _ and -`);
  }

  /** kafkajs is loaded on first use: a process on the in-process bus never holds it in memory. */
  private client(): Promise<Kafka> {
    this.kafka ??= this.newClient(5);
    return this.kafka;
  }

  /** A client that never retries, for the round trip that tells whether the brokers are up. */
  private probeClient(): Promise<Kafka> {
    this.probeKafka ??= this.newClient(0);
    return this.probeKafka;
  }

  private newClient(retries: number): Promise<Kafka> {
    return import('kafkajs').then(
      ({ Kafka, logLevel }) =>
        new Kafka({
          clientId: this.options.clientId,
          brokers: this.options.brokers,
          logLevel: logLevel.NOTHING,
          retry: { retries, initialRetryTime: 200, maxRetryTime: 5_000 },
        }),
    );
  }

  /** The topic of an event type under this bus's prefix. */
  topicFor(type: string): string {
    return topicFor(type, this.prefix);
  }

  /** Connects the producer and creates the configured topics; fails with the brokers named. */
  async start(): Promise<void> {
    this.mode = 'strict';
    try {
      await this.connect();
    } catch (error) {
      this.markDown(error);
      throw error;
    }
    this.markUp();
  }

  /**
   * Starts connecting in the background: a service serves while Kafka is unreachable, retrying with
   * jittered back-off; `health()` says how it goes, `onConnected` listeners hear when it is up.
   * Resolves after the first attempt, connected or not; rejects only when that attempt reached the
   * brokers and failed in a way retrying cannot fix (a replication factor above the brokers), so a
   * misconfigured service stops at start, saying so.
   */
  startInBackground(): Promise<void> {
    this.mode = 'background';
    const first = new Promise<void>((resolve, reject) => {
      this.settleFirstAttempt = (error) => (isConfigurationError(error) ? reject(error) : resolve());
    });
    this.supervise();
    return first;
  }

  health(): BusHealth {
    return {
      state: this.state,
      since: this.since,
      ...(this.reason !== undefined && this.state !== 'connected' ? { reason: this.reason } : {}),
      target: this.options.brokers.join(','),
      consumers: Object.fromEntries(this.consumerStatus),
      lag: this.lag,
    };
  }

  /**
   * Reads how far each consumer group of this process is behind, on each topic it reads, and keeps
   * it for `health().lag`. A failed reading (brokers away) keeps the last one.
   */
  async sampleLag(): Promise<readonly ConsumerLag[]> {
    if (this.subscriptions.length === 0 || this.state !== 'connected') return this.lag;
    // The client without retries: a reading must not hang on brokers that went away.
    const admin = (await this.probeClient()).admin();
    await admin.connect();
    try {
      const pattern = this.topicPattern();
      const topics = (await admin.listTopics()).filter((t) => pattern.test(t)).sort();
      const ends = await Promise.all(topics.map((t) => admin.fetchTopicOffsets(t)));
      const lag: ConsumerLag[] = [];
      for (const sub of this.subscriptions) {
        const group = this.groupId(sub.group);
        const reads = this.topicsOf(sub.types);
        const mine = topics.filter((t) => reads.some((r) => (typeof r === 'string' ? r === t : r.test(t))));
        const committed = await admin.fetchOffsets({ groupId: group, topics: mine });
        for (const topic of mine) {
          const offsets = committed.find((c) => c.topic === topic)?.partitions ?? [];
          const byPartition = new Map(offsets.map((p) => [p.partition, p.offset]));
          lag.push(...lagOf(group, topic, ends[topics.indexOf(topic)] ?? [], byPartition));
        }
      }
      this.lag = lag;
      return lag;
    } catch (error) {
      // Brokers away or a partition's leader moving (a retriable answer): the next reading will do.
      if (isBrokerFailure(error)) return this.lag;
      throw error;
    } finally {
      await admin.disconnect();
    }
  }

  private sampleLagPeriodically(): void {
    if (this.lagTimer) return;
    let sampling = false;
    this.lagTimer = setInterval(() => {
      if (sampling || this.closed || this.subscriptions.length === 0) return;
      sampling = true;
      this.sampleLag()
        .catch(() => {})
        .finally(() => {
          sampling = false;
        });
    }, this.options.lagSampleMs ?? 5_000);
    this.lagTimer.unref();
  }

  onConnected(listener: () => void): () => void {
    this.connectedListeners.add(listener);
    return () => this.connectedListeners.delete(listener);
  }

  /**
   * One attempt: a round trip to the brokers that fails fast, the producer, the topics, and the
   * consumers still waiting to join.
   */
  private async connect(): Promise<void> {
    const kafka = await this.client();
    try {
      // No retries: an unreachable broker fails this attempt now; the back-off decides when to retry.
      await this.probe();
      this.producer ??= this.newProducer(kafka);
      await this.producer.connect();
    } catch (error) {
      throw new Error(
        `Cannot reach Kafka at ${this.options.brokers.join(',')}: ${(error as Error).message}. Is it running? (npm run engines:up)`,
        { cause: error },
      );
    }
    await this.ensureTopics(
      this.options.topics ?? [...new Set(Object.keys(eventPayloadSchemas).map((t) => this.topicFor(t)))],
    );
    for (const sub of this.subscriptions) if (!sub.consumer) await this.startConsumer(sub);
  }

  /** One round trip to the brokers, without retries. */
  private async probe(): Promise<void> {
    const admin = (await this.probeClient()).admin();
    await admin.connect();
    try {
      await admin.describeCluster();
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * While connected, a probe every few seconds: a bus that only consumes, or a gateway without
   * traffic, would otherwise report Kafka up long after it went away.
   */
  private watchBrokers(): void {
    if (this.watch) return;
    let probing = false;
    this.watch = setInterval(() => {
      if (probing || this.closed || this.state !== 'connected') return;
      probing = true;
      this.probe()
        .catch((error: unknown) => this.lost(error))
        .finally(() => {
          probing = false;
        });
    }, this.options.healthCheckMs ?? 5_000);
    this.watch.unref();
  }

  private markUp(): void {
    if (this.closed) return;
    this.watchBrokers();
    this.sampleLagPeriodically();
    const recovered = this.state !== 'connected';
    this.state = 'connected';
    this.reason = undefined;
    if (!recovered) return;
    this.since = Date.now();
    for (const listener of this.connectedListeners) listener();
  }

  private markDown(error: unknown): void {
    // The cause of "Cannot reach Kafka at ...", which the rest of the message already says.
    const cause = (error as Error).cause;
    this.reason = (cause instanceof Error ? cause : (error as Error)).message;
    if (this.state === 'unavailable') return;
    this.state = 'unavailable';
    this.since = Date.now();
  }

  /** The brokers failed a publish or a consumer: fail fast from now on and find out when they are back. */
  private lost(error: unknown): void {
    if (this.mode === 'idle' || this.closed) return;
    this.markDown(error);
    this.failures++;
    this.supervise();
  }

  /** Retries `connect()` with jittered back-off until it succeeds or the bus closes. */
  private supervise(): void {
    if (this.supervisor || this.closed) return;
    this.supervisor = (async () => {
      while (!this.closed && this.state !== 'connected') {
        if (this.failures > 0) await this.pause(reconnectDelayMs(this.failures, this.options.reconnect));
        if (this.closed) return;
        let failure: unknown;
        try {
          await this.connect();
          this.markUp();
        } catch (error) {
          failure = error;
          this.markDown(error);
          this.failures++;
        }
        this.settleFirstAttempt?.(failure);
        this.settleFirstAttempt = undefined;
      }
    })().finally(() => {
      this.supervisor = undefined;
    });
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.cancelPause = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** What a caller is told while the brokers are unreachable: since when, why, and what to do. */
  private unavailable(): Error {
    const since = new Date(this.since).toISOString();
    return new Error(
      `Kafka at ${this.options.brokers.join(',')} is unreachable since ${since}${this.reason ? ` (${this.reason})` : ''}; retrying in the background. Fix: start Kafka, or correct FLOWLOOM_KAFKA_BROKERS`,
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
    return configurationError(
      `Cannot create Kafka topics ${topics.join(', ')} with replication factor ${replicationFactor}: the cluster at ${this.options.brokers.join(',')} has ${brokers}, and each copy needs a broker of its own. Fix: set FLOWLOOM_KAFKA_REPLICATION_FACTOR (kafkaTopics.replicationFactor) to at most the number of brokers, or add brokers.`,
    );
  }

  /**
   * Groups are per prefix too: members of one group must subscribe alike. The default prefix keeps
   * the plain names, so an existing install resumes from its committed offsets.
   */
  private groupId(group: string): string {
    return this.prefix === DEFAULT_TOPIC_PREFIX ? group : `${this.prefix}.${group}`;
  }

  /** Every topic under this bus's prefix. */
  private topicPattern(): RegExp {
    return new RegExp(`^${this.prefix}\\..+`);
  }

  /**
   * The topics a group reads: the families of the event types it handles, so that the brokers do
   * not send it every other event only for it to drop them (each extra group reading everything
   * cost the broker CPU per request). A type prefix shorter than a family reads every topic.
   */
  private topicsOf(types: readonly string[] | undefined): Array<string | RegExp> {
    if (!types || types.some((t) => t.split('.').length < 5)) return [this.topicPattern()];
    return [...new Set(types.map((t) => this.topicFor(t)))];
  }

  /** A consumer of the topics under this bus's prefix that carry `types`, joined to `group`. */
  private async consumerFor(group: string, types?: readonly string[]): Promise<Consumer> {
    const consumer = (await this.client()).consumer({
      groupId: this.groupId(group),
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      minBytes: FETCH_MIN_BYTES,
      maxWaitTimeInMs: FETCH_MAX_WAIT_MS,
    });
    await consumer.connect();
    try {
      // A subscription sees the topics that exist now: `connect()` creates the known families.
      await consumer.subscribe({ topics: this.topicsOf(types), fromBeginning: true });
    } catch (error) {
      await consumer.disconnect().catch(() => {});
      throw error;
    }
    return consumer;
  }

  /** Joins the group and runs it; kafkajs restarts it after a retriable crash, the supervisor after others. */
  private async startConsumer(sub: Subscription): Promise<void> {
    this.consumerStatus.set(sub.group, 'joining its group');
    const consumer = await this.consumerFor(sub.group, sub.types);
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.consumerStatus.set(sub.group, 'consuming');
      this.failures = 0;
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (this.closed) return;
      this.consumerStatus.set(
        sub.group,
        `${payload.restart ? 'restarting' : 'stopped'} after: ${payload.error.message}`,
      );
      if (!payload.restart) sub.consumer = undefined;
      if (!payload.restart || isBrokerFailure(payload.error)) this.lost(payload.error);
    });
    try {
      await sub.run(consumer);
    } catch (error) {
      await consumer.disconnect().catch(() => {});
      this.consumerStatus.set(sub.group, `waiting for Kafka: ${(error as Error).message}`);
      throw error;
    }
    sub.consumer = consumer;
  }

  /**
   * Registers a group. When the bus is up (or was never started) the consumer joins now and a failure
   * rejects; in the background mode, or while the brokers are away, it joins once they are back.
   */
  private async addSubscription(sub: Subscription): Promise<void> {
    this.subscriptions.push(sub);
    this.consumerStatus.set(sub.group, 'waiting for Kafka');
    if (this.state !== 'connected' && this.mode !== 'idle') {
      // The supervisor (running while the bus is down) starts it with the others.
      this.supervise();
      return;
    }
    try {
      await this.startConsumer(sub);
    } catch (error) {
      if (this.mode === 'background') return this.lost(error);
      this.subscriptions.splice(this.subscriptions.indexOf(sub), 1);
      this.consumerStatus.delete(sub.group);
      throw error;
    }
  }

  private newProducer(kafka: Kafka): Producer {
    return kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  }

  /**
   * A refused produce request may have been appended on its other partitions while kafkajs rolled
   * back their sequence numbers: the next send there would be refused as out of order, for good. A
   * new producer (a new producer id) starts its sequences afresh; what the old one appended is sent
   * again, and consumers deduplicate it by event id.
   */
  private async renewProducer(): Promise<void> {
    const old = this.producer;
    const renewed = this.newProducer(await this.client());
    this.producer = renewed;
    // Another publisher's send may be on its way on the old one: it is disconnected once that settles.
    if (old) {
      const pending = [...(this.sending.get(old) ?? [])];
      void Promise.allSettled(pending).then(() => old.disconnect().catch(() => {}));
    }
    await renewed.connect();
  }

  /**
   * Rejects with `EventsRefusedError` naming the events the brokers refused for good (too large for
   * the topic, an invalid record); every other event was then published, in order.
   */
  async publish(events: readonly CloudEvent[]): Promise<void> {
    if (this.mode === 'idle') throw new Error('KafkaBus.start() was not called');
    if (!this.producer || this.state !== 'connected') throw this.unavailable();
    const records = new Map(events.map((e) => [e, toKafkaRecord(e)]));
    // UTF-16 length: under the UTF-8 size for non-ASCII text, by 3× at most, far within the margin.
    const sizeOf = (e: CloudEvent) => {
      const r = records.get(e);
      return (r?.value.length ?? 0) + (r?.key?.length ?? 0) + RECORD_OVERHEAD_BYTES;
    };
    const refused: RefusedEvent[] = [];
    try {
      for (const chunk of sizeChunks(events, sizeOf, MAX_REQUEST_BYTES))
        refused.push(
          ...(await sendIsolatingRefused(
            chunk,
            (list) => this.send(list, records),
            messageRefusalOf,
            () => this.renewProducer(),
          )),
        );
    } catch (error) {
      if (isBrokerFailure(error)) this.lost(error);
      throw error;
    }
    this.failures = 0;
    if (refused.length > 0) throw new EventsRefusedError(refused);
  }

  private async send(events: readonly CloudEvent[], records: Map<CloudEvent, KafkaRecord>): Promise<void> {
    const byTopic = new Map<string, CloudEvent[]>();
    for (const event of events) {
      const topic = this.topicFor(event.type);
      const list = byTopic.get(topic);
      if (list) list.push(event);
      else byTopic.set(topic, [event]);
    }
    await this.ensureTopics([...byTopic.keys()]);
    const producer = this.producer;
    if (!producer) throw this.unavailable();
    const sent = producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, list]) => ({
        topic,
        messages: list.map((e) => records.get(e) ?? toKafkaRecord(e)),
      })),
    });
    const mine = this.sending.get(producer) ?? new Set<Promise<unknown>>();
    this.sending.set(producer, mine.add(sent));
    try {
      await sent;
    } finally {
      mine.delete(sent);
      if (mine.size === 0) this.sending.delete(producer);
    }
  }

  async subscribe(group: string, handler: EventHandler, types?: readonly string[]): Promise<void> {
    await this.consumeBatches(
      group,
      types,
      async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break;
          const event = fromKafkaRecord(message.headers ?? {}, message.value);
          if (event && (!types || types.some((t) => event.type.startsWith(t)))) await handler(event);
          resolveOffset(message.offset);
          await heartbeat();
        }
      },
    );
  }

  async subscribeBatch(group: string, handler: BatchEventHandler, types?: readonly string[]): Promise<void> {
    await this.consumeBatches(
      group,
      types,
      async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const events: CloudEvent[] = [];
        for (const message of batch.messages) {
          const event = fromKafkaRecord(message.headers ?? {}, message.value);
          if (event && (!types || types.some((t) => event.type.startsWith(t)))) events.push(event);
        }
        if (events.length > 0) await handler(events);
        // The whole fetch is handled: resolve past its last message. A failure above commits nothing.
        resolveOffset((batch.messages[batch.messages.length - 1] as { offset: string }).offset);
        await heartbeat();
      },
    );
  }

  /** A group whose `handle` resolves the offsets it handled; only those are committed after it. */
  private async consumeBatches(
    group: string,
    types: readonly string[] | undefined,
    handle: (payload: EachBatchPayload) => Promise<void>,
  ): Promise<void> {
    await this.addSubscription({
      group,
      ...(types ? { types } : {}),
      run: (consumer) =>
        consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async (payload) => {
            await handle(payload);
            // Only offsets of handled messages are committed: a crash re-delivers the rest. They are
            // passed explicitly: with autoCommit off, kafkajs commits nothing unless told what.
            await payload.commitOffsetsIfNecessary(payload.uncommittedOffsets());
          },
        }),
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancelPause?.();
    clearInterval(this.watch);
    clearInterval(this.lagTimer);
    // An attempt in flight finishes first, so nothing it connects outlives the bus.
    await this.supervisor;
    await Promise.all(this.subscriptions.map((s) => s.consumer?.disconnect()));
    await this.producer?.disconnect();
  }
}

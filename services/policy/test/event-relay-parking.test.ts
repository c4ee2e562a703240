import { createHash } from 'node:crypto';
import { kafkaWithLimitedTopics, type LimitedKafka } from '@flowloom/bus/testing';
import {
  type CloudEvent,
  createEvent,
  OUTBOX_EVENT_PARKED,
  type OutboxEventParked,
  POLICY_VERSION_PUSHED,
} from '@flowloom/contracts';
import { canonicalize } from '@flowloom/ledger';
import { POLICY_OUTBOX, reportParked, SqlParkedEvents } from '@flowloom/outbox';
import { migrate } from '@flowloom/store';
import { createLogger, createRegistry } from '@flowloom/telemetry';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { policyMigrations } from '../src/adapters/migrations.js';
import { SqlEventRelay } from '../src/adapters/sql-event-relay.js';
import { testSchema } from './support.js';

// The policy service's relay on real Kafka and PostgreSQL: an event too large for its topic
// (max.message.bytes set at creation) is parked in policy_outbox, the others go out in order, and a
// stand-in with its hash is published in its place; once the topic's limit is raised, publishing it
// again puts it on the bus.

describe('SqlEventRelay parks an event the real Kafka refuses for good', { timeout: 120_000 }, () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  let kafka: LimitedKafka;

  beforeAll(async () => {
    schema = await testSchema();
    kafka = await kafkaWithLimitedTopics('policy-parking', ['policy.version'], 4096);
  });

  afterAll(async () => {
    await kafka?.close();
    await schema?.drop();
  });

  it('when a policy event is too large for its topic, then it is parked, the rest go out in order, a stand-in carries its hash, and a redrive publishes it once the limit is raised', async () => {
    const db = await schema.open();
    await migrate(db, policyMigrations);
    const event = (n: number, source = 'rules: []') =>
      createEvent(POLICY_VERSION_PUSHED, 'flowloom/policy', { n, source }, 'policy/guard');
    const big = event(2, 'x'.repeat(20_000));
    const events = [event(1), big, event(3)];
    for (const e of events)
      await db.query('insert into policy_outbox (id, event) values ($1, $2)', [e.id, JSON.stringify(e)]);
    const parked: string[] = [];
    const registry = createRegistry();
    const report = reportParked(registry, createLogger({ service: 'test', level: 'silent' }), POLICY_OUTBOX);
    const relay = new SqlEventRelay(db, kafka.bus, () => {}, {
      source: 'flowloom/policy',
      onParked: (p) => {
        parked.push(p.event.id);
        report(p);
      },
    });
    const parkedEvents = new SqlParkedEvents(db, () => relay.publishPending(), {
      name: 'policy_outbox',
      idType: 'text',
    });

    // Two events and the stand-in.
    expect(await relay.publishPending()).toBe(3);
    expect(parked).toEqual([big.id]);
    expect(await parkedEvents.count()).toBe(1);
    expect(await registry.metrics()).toContain(
      `flowloom_policy_outbox_parked_total{type="${POLICY_VERSION_PUSHED}"} 1`,
    );
    expect(await relay.backlog()).toBe(0);
    const { rows } = await db.query<{ id: string; reason: string; published: boolean }>(
      'select id, park_reason as reason, published_at is not null as published from policy_outbox where parked_at is not null',
    );
    expect(rows).toEqual([
      { id: big.id, reason: expect.stringMatching(/^MESSAGE_TOO_LARGE/), published: false },
    ]);

    const { received } = kafka;
    await vi.waitFor(() => expect(received).toHaveLength(3), { timeout: 30_000 });
    expect(received.filter((e) => e.type === POLICY_VERSION_PUSHED).map((e) => e.id)).toEqual([
      events[0]!.id,
      events[2]!.id,
    ]);
    const standIn = received.find((e) => e.type === OUTBOX_EVENT_PARKED) as CloudEvent<OutboxEventParked>;
    expect(standIn.source).toBe('flowloom/policy');
    expect(standIn.data).toMatchObject({
      eventId: big.id,
      sha256: createHash('sha256').update(canonicalize(big)).digest('hex'),
    });
    expect(await parkedEvents.list(10)).toEqual([
      expect.objectContaining({ id: big.id, sha256: (standIn.data as OutboxEventParked).sha256 }),
    ]);

    // Still refused: parked again, with a new stand-in.
    const again = await parkedEvents.redrive();
    expect(again).toEqual({ requeued: 1, published: [], parkedAgain: [big.id], pending: [] });
    await vi.waitFor(() => expect(received.filter((e) => e.type === OUTBOX_EVENT_PARKED)).toHaveLength(2), {
      timeout: 30_000,
    });

    await kafka.raiseLimit('policy.version');
    // The broker applies a topic's new limit shortly after the change: redrive until it does.
    await vi.waitFor(async () => expect((await parkedEvents.redrive([big.id])).published).toEqual([big.id]), {
      timeout: 30_000,
      interval: 500,
    });
    expect(await parkedEvents.count()).toBe(0);
    await vi.waitFor(() => expect(received.some((e) => e.id === big.id)).toBe(true), { timeout: 30_000 });
    expect(received.filter((e) => e.id === big.id)).toHaveLength(1);
  });
});

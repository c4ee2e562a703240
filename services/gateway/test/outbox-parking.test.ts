import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaWithLimitedTopics, type LimitedKafka } from '@flowloom/bus/testing';
import {
  type CloudEvent,
  createEvent,
  GATEWAY_REQUEST_COMPLETED,
  OUTBOX_EVENT_PARKED,
  type OutboxEventParked,
} from '@flowloom/contracts';
import { canonicalize } from '@flowloom/ledger';
import { parkedGauge, reportParked, SqlParkedEvents } from '@flowloom/outbox';
import { migrate } from '@flowloom/store';
import { createLogger, createRegistry } from '@flowloom/telemetry';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileOutbox } from '../src/adapters/file-outbox.js';
import { gatewayMigrations } from '../src/adapters/migrations.js';
import { OutboxRelay, SqlOutbox } from '../src/adapters/sql-outbox.js';

import { openTestPostgres, type TestDatabase } from './databases.js';

// The real broker refuses an event too large for its topic (max.message.bytes set at creation): the
// relay must park it in PostgreSQL, publish the rest in order with a stand-in carrying its hash, and
// publish it once the topic's limit is raised and an admin redrives it.

const FILE_TYPE = 'dev.flowloom.gateway.auth.failed.v1';

const event = (n: number, prompt = 'hi'): CloudEvent =>
  createEvent(GATEWAY_REQUEST_COMPLETED, 'flowloom/gateway', { n, inputs: { prompt } }, 'job/parking');
const sha256 = (e: CloudEvent) => createHash('sha256').update(canonicalize(e), 'utf8').digest('hex');

describe('OutboxRelay parks an event the real Kafka refuses for good', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let kafka: LimitedKafka;
  const logLines: string[] = [];
  const registry = createRegistry();
  const log = createLogger({
    service: 'gateway',
    destination: { write: (line: string) => logLines.push(line) },
  });

  beforeAll(async () => {
    database = await openTestPostgres();
    await migrate(database.db, gatewayMigrations);
    kafka = await kafkaWithLimitedTopics('parking-test', ['gateway.request', 'gateway.auth'], 4096);
  });

  afterAll(async () => {
    await kafka?.close();
    await database?.drop();
  });

  it('when one event is too large for its topic, then it is parked and kept, the rest go out in order with a stand-in, and a redrive publishes it once the limit is raised', async () => {
    const db = database.db;
    const big = event(3, 'x'.repeat(20_000));
    const events = [event(1), event(2), big, event(4), event(5)];
    const outbox = new SqlOutbox(db);
    for (const e of events) await outbox.append([e]);
    const relay = new OutboxRelay(db, kafka.bus, {
      idleMs: 50,
      retainPublishedMs: 0,
      onParked: reportParked(registry, log),
    });
    const parked = new SqlParkedEvents(db, () => relay.publishPending());
    parkedGauge(registry, parked);

    // The relay's loop publishes, then applies retention (published rows older than 0 ms go).
    relay.start();
    await vi.waitFor(
      async () => {
        const { rows } = await db.query<{ n: number }>('select count(*)::int as n from outbox');
        expect(rows[0]?.n).toBe(1);
      },
      { timeout: 30_000 },
    );
    await relay.stop();

    // Kept in PostgreSQL, parked with the broker's reason, never published nor deleted by retention.
    const { rows: kept } = await db.query<{
      id: string;
      published: boolean;
      reason: string;
      event: CloudEvent;
    }>(
      'select id::text as id, published_at is not null as published, park_reason as reason, event from outbox',
    );
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatchObject({ id: big.id, published: false });
    expect(kept[0]?.reason).toMatch(/^MESSAGE_TOO_LARGE: /);
    expect(kept[0]?.event).toEqual(big);

    // The trail: the other events in order, and a stand-in with the parked event's identity and hash.
    await vi.waitFor(() => expect(kafka.received).toHaveLength(5), { timeout: 30_000 });
    const requests = kafka.received.filter((e) => e.type === GATEWAY_REQUEST_COMPLETED);
    expect(requests.map((e) => e.id)).toEqual([events[0], events[1], events[3], events[4]].map((e) => e!.id));
    const standIn = kafka.received.find(
      (e) => e.type === OUTBOX_EVENT_PARKED,
    ) as CloudEvent<OutboxEventParked>;
    expect(standIn.subject).toBe('job/parking');
    expect(standIn.data).toMatchObject({
      eventId: big.id,
      eventType: big.type,
      eventSource: big.source,
      eventSubject: 'job/parking',
      eventTime: big.time,
      sizeBytes: Buffer.byteLength(canonicalize(big)),
      sha256: sha256(big),
      outcome: 'parked',
    });
    expect(standIn.data.reason).toMatch(/^MESSAGE_TOO_LARGE/);

    // Operators: the list, the metrics, and an error line naming the event but not its content.
    const [listed] = await parked.list(10);
    expect(listed).toMatchObject({ id: big.id, sha256: sha256(big), sizeBytes: standIn.data.sizeBytes });
    const metrics = await registry.metrics();
    expect(metrics).toContain(`flowloom_outbox_parked_total{type="${GATEWAY_REQUEST_COMPLETED}"} 1`);
    expect(metrics).toContain('flowloom_outbox_parked_events 1');
    const line = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.eventId === big.id);
    expect(line).toMatchObject({ level: 'error', type: big.type, sha256: sha256(big) });
    expect(logLines.join('')).not.toContain('xxxxxxxxxx');

    // A redrive before the fix is refused again: parked again, with a new stand-in.
    expect(await parked.redrive()).toMatchObject({ requeued: 1, published: [], parkedAgain: [big.id] });
    expect(await parked.count()).toBe(1);

    await kafka.raiseLimit('gateway.request');
    // The broker applies a topic's new limit shortly after the change: redrive until it does.
    await vi.waitFor(async () => expect((await parked.redrive([big.id])).published).toEqual([big.id]), {
      timeout: 30_000,
      interval: 500,
    });
    expect(await parked.count()).toBe(0);
    await vi.waitFor(() => expect(kafka.received.some((e) => e.id === big.id)).toBe(true), {
      timeout: 30_000,
    });
    // What the trail now holds is the event the stand-in described, byte for byte.
    expect(sha256(kafka.received.find((e) => e.id === big.id)!)).toBe(standIn.data.sha256);
  });
  it('when the embedded file outbox relays to Kafka and one event is too large, then it is parked in a file pruning never deletes, a stand-in goes out, and a redrive publishes it', async () => {
    // Its events go to a topic of their own, so that raising the other test's limit leaves this one.
    const dir = mkdtempSync(join(tmpdir(), 'flowloom-parking-'));
    const fileRegistry = createRegistry();
    const authEvent = (n: number, pad = 'a'): CloudEvent =>
      createEvent(FILE_TYPE, 'flowloom/gateway', { n, presented: pad }, 'job/file');
    const big = authEvent(3, 'y'.repeat(20_000));
    const events = [authEvent(1), authEvent(2), big, authEvent(4)];
    // Small segments: the log rolls over, and wholly published segments are deleted on close.
    const outbox = await FileOutbox.open(dir, kafka.bus, {
      segmentBytes: 512,
      onParked: reportParked(fileRegistry, log),
    });
    try {
      for (const e of events) await outbox.append([e]);
      await outbox.publishPending();
      await outbox.close();
      const segments = readdirSync(dir).filter((f) => f.endsWith('.jsonl') && f !== 'parked.jsonl');
      expect(segments).toHaveLength(1);

      const trail = () => kafka.received.filter((e) => e.subject === 'job/file');
      await vi.waitFor(() => expect(trail()).toHaveLength(4), { timeout: 30_000 });
      expect(
        trail()
          .filter((e) => e.type === FILE_TYPE)
          .map((e) => e.id),
      ).toEqual([events[0], events[1], events[3]].map((e) => e!.id));
      const standIn = trail().find((e) => e.type === OUTBOX_EVENT_PARKED) as CloudEvent<OutboxEventParked>;
      expect(standIn.data).toMatchObject({ eventId: big.id, sha256: sha256(big), outcome: 'parked' });
      expect(await fileRegistry.metrics()).toContain(`flowloom_outbox_parked_total{type="${FILE_TYPE}"} 1`);

      // Opened again (a restart): the parked event is still there, and published once the limit is raised.
      const reopened = await FileOutbox.open(dir, kafka.bus, {
        onParked: reportParked(createRegistry(), log),
      });
      try {
        expect(await reopened.parked.list(10)).toMatchObject([
          { id: big.id, sha256: sha256(big), reason: expect.stringMatching(/^MESSAGE_TOO_LARGE/) },
        ]);
        await kafka.raiseLimit('gateway.auth');
        await vi.waitFor(async () => expect((await reopened.parked.redrive()).published).toEqual([big.id]), {
          timeout: 30_000,
          interval: 500,
        });
        expect(await reopened.parked.count()).toBe(0);
        await vi.waitFor(() => expect(trail().some((e) => e.id === big.id)).toBe(true), { timeout: 30_000 });
      } finally {
        await reopened.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { type EventBus, InProcessBus } from '@flowloom/bus';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeAllEvents } from '../src/consumers/bus-consumer.js';
import type { TestDatabase } from './databases.js';
import { COMPLETED, openTestDatabase, openTestLedger, requestEvent, type TestLedger } from './support.js';

// The consumer appends everything the bus delivers, exactly once, without secrets.

describe('the audit consumer', () => {
  let database: TestDatabase;
  let t: TestLedger;
  let bus: InProcessBus;

  beforeAll(async () => {
    database = await openTestDatabase('pglite');
    t = await openTestLedger(database.db);
    bus = new InProcessBus();
    await consumeAllEvents(bus, t.ledger);
  });
  afterAll(async () => {
    await bus?.close();
    await t?.ledger.close();
    t?.cleanup();
    await database?.drop();
  });

  it('when the bus delivers batches, then publish resolves only once every event is in the ledger', async () => {
    const before = t.ledger.size;
    const events = Array.from({ length: 3_000 }, (_, i) => requestEvent(i));
    for (let at = 0; at < events.length; at += 1_000) {
      await bus.publish(events.slice(at, at + 1_000));
      expect(t.ledger.size).toBe(before + at + 1_000);
    }
    const last = events[events.length - 1] as CloudEvent;
    expect(await t.store.indexOfEvent(last.id)).toBe(before + events.length - 1);
  });

  it('when a batch is redelivered (at-least-once), then nothing is appended twice', async () => {
    const events = Array.from({ length: 50 }, (_, i) => requestEvent(10_000 + i));
    await bus.publish(events);
    const size = t.ledger.size;
    await bus.publish(events);
    await bus.publish([...events.slice(10, 20), requestEvent(20_000)]);
    expect(t.ledger.size).toBe(size + 1);
  });

  it('when events carry secrets anywhere, then the ledger entry holds none of them', async () => {
    const secrets = [
      'flk_live_0123456789abcdefghijklmnop',
      'sk-proj-ABCDEFGHIJKLMNOPQRSTUV',
      'sk-ant-api03-abcdefghijklmnopqrstu',
      'AIzaSyA1234567890abcdefghijklmnopqrstu',
      'super-secret-password',
      'eyJhbGciOiJIUzI1NiJ9.payload.signature',
      'hunter2hunter2',
    ];
    const event = createEvent(COMPLETED, 'flowloom/gateway', {
      requestId: 'req-secret',
      owner: 'alice',
      usage: { inputTokens: 12, outputTokens: 34, cachedInputTokens: 0 },
      timeToFirstTokenMs: 5,
      headers: {
        Authorization: `Bearer ${secrets[0]}`,
        'x-api-key': secrets[1],
        'X-Goog-Api-Key': secrets[3],
      },
      provider: {
        apiKey: secrets[2],
        config: { nested: [{ password: secrets[4] }, { accessToken: secrets[5] }] },
      },
      errorMessage: `upstream rejected key ${secrets[1]} (Authorization: Bearer ${secrets[5]}); db postgres://app:${secrets[6]}@db:5432/x`,
      note: `retry with ${secrets[0]}`,
    });
    await bus.publish([event]);
    const index = await t.store.indexOfEvent(event.id);
    const view = await t.ledger.entry(index ?? -1);
    const entry = view?.entry ?? '';
    for (const secret of secrets) expect(entry).not.toContain(secret);
    const data = JSON.parse(entry).data;
    expect(data.usage).toEqual({ inputTokens: 12, outputTokens: 34, cachedInputTokens: 0 });
    expect(data.timeToFirstTokenMs).toBe(5);
    expect(data.headers.Authorization).toBe('[redacted]');
    expect(data.provider.config.nested[0].password).toBe('[redacted]');
    expect(data.errorMessage).toContain('[redacted]');
    // Searchable text never holds them either.
    expect(await t.ledger.query({ limit: 5, order: 'desc', text: secrets[4] })).toEqual([]);
  });

  it('when an event cannot be canonicalised or has no id, then its trace is still logged and the rest goes on', async () => {
    const broken = {
      ...createEvent(COMPLETED, 'flowloom/gateway', { text: 'lone \ud800 surrogate' }),
    };
    const anonymous = { ...createEvent(COMPLETED, 'flowloom/gateway', { n: 1 }), id: undefined };
    const fine = requestEvent(30_000);
    await bus.publish([broken, anonymous as unknown as CloudEvent, fine]);
    const trace = await t.ledger.entry((await t.store.indexOfEvent(broken.id)) ?? -1);
    expect(JSON.parse(trace?.entry ?? '{}').data.$unloggable).toMatch(/surrogate|canonicalize/);
    expect(await t.store.indexOfEvent(fine.id)).toBeDefined();
    const derived = await t.ledger.query({ limit: 3, order: 'desc' });
    expect(derived.some((v) => v.eventId.startsWith('sha256:'))).toBe(true);
    // Delivered again, the id-less event is recognised by its content.
    const size = t.ledger.size;
    await bus.publish([anonymous as unknown as CloudEvent]);
    expect(t.ledger.size).toBe(size);
  });

  it('when the bus cannot hand over batches, then the consumer falls back to one event at a time', async () => {
    const delivered: Array<(event: CloudEvent) => Promise<void>> = [];
    const minimal: EventBus = {
      publish: async () => {},
      subscribe: async (_group, handler) => {
        delivered.push(handler);
      },
      close: async () => {},
    };
    await consumeAllEvents(minimal, t.ledger);
    const event = requestEvent(40_000);
    await delivered[0]?.(event);
    expect(await t.store.indexOfEvent(event.id)).toBeDefined();
  });
});

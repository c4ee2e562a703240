import { type CloudEvent, createEvent, uuidv7 } from '@flowloom/contracts';
import { type Db, migrate } from '@flowloom/store';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { gatewayMigrations } from '../src/adapters/migrations.js';
import { SqlKeyStore } from '../src/adapters/sql-key-store.js';
import { OutboxRelay, SqlOutbox } from '../src/adapters/sql-outbox.js';
import { generateKeySecret, hashKey, keyHint } from '../src/domain/keys.js';
import type { NewKey } from '../src/ports/key-store.js';
import { openTestPglite, openTestPostgres, type TestDatabase } from './databases.js';
import { RecordingBus } from './recording-bus.js';

// One contract, two engines: the embedded PGlite and a real PostgreSQL must behave the same.
const engines = [
  { engine: 'PGlite', open: openTestPglite },
  { engine: 'PostgreSQL', open: openTestPostgres },
];

function newKey(extra: Partial<NewKey> = {}): NewKey {
  const secret = generateKeySecret();
  return {
    id: uuidv7(),
    secretHash: hashKey(secret),
    hint: keyHint(secret),
    name: 'contract',
    owner: 'alice',
    project: null,
    team: null,
    job: null,
    role: 'member',
    models: null,
    expiresAt: null,
    rotatedFrom: null,
    createdBy: null,
    rotatedBy: null,
    ...extra,
  };
}

const uniqueProject = () => `proj-${uuidv7()}`;

function testEvent(n: number): CloudEvent<{ n: number }> {
  return createEvent('dev.flowloom.test.contract.v1', 'flowloom/test', { n }, `test/${n % 3}`);
}

async function countRows(db: Db, where = 'true'): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from outbox where ${where}`);
  return rows[0]?.n ?? -1;
}

describe.each(engines)('SQL key store and outbox on $engine', ({ open }) => {
  let database: TestDatabase;
  let db: Db;

  let unavailable: Error | undefined;

  beforeAll(async () => {
    try {
      database = await open();
    } catch (error) {
      // Every test then fails with the reason, rather than the suite being reported as skipped.
      unavailable = error as Error;
      return;
    }
    db = database.db;
    await migrate(db, gatewayMigrations);
  });
  beforeEach(() => {
    if (unavailable) throw unavailable;
  });
  afterAll(async () => {
    await database?.drop();
  });

  describe('key store', () => {
    it('when a key is inserted, then it is found by hash and by id with every field intact', async () => {
      const store = new SqlKeyStore(db);
      const expiresAt = new Date(Date.now() + 86_400_000);
      const input = newKey({
        project: 'alpha',
        team: 'core',
        role: 'admin',
        models: ['gpt-4o', 'claude-*'],
        expiresAt,
      });
      const before = Date.now();
      const inserted = await store.insert(input);
      expect(inserted).toMatchObject({
        id: input.id,
        hint: input.hint,
        name: 'contract',
        owner: 'alice',
        project: 'alpha',
        team: 'core',
        role: 'admin',
        models: ['gpt-4o', 'claude-*'],
        revokedAt: null,
        rotatedFrom: null,
      });
      expect(inserted.expiresAt).toBeInstanceOf(Date);
      expect(inserted.expiresAt?.getTime()).toBe(expiresAt.getTime());
      expect(inserted.createdAt).toBeInstanceOf(Date);
      expect(Math.abs(inserted.createdAt.getTime() - before)).toBeLessThan(60_000);
      expect(await store.findByHash(input.secretHash)).toEqual(inserted);
      expect(await store.findById(input.id)).toEqual(inserted);
    });

    it('when a key has no model list or expiry, then they read back as null', async () => {
      const store = new SqlKeyStore(db);
      const input = newKey();
      await store.insert(input);
      const found = await store.findById(input.id);
      expect(found?.models).toBeNull();
      expect(found?.expiresAt).toBeNull();
      expect(found?.project).toBeNull();
    });

    it('when a hash or id is unknown, then nothing is found', async () => {
      const store = new SqlKeyStore(db);
      expect(await store.findByHash(hashKey('flk_nobody'))).toBeUndefined();
      expect(await store.findById(uuidv7())).toBeUndefined();
    });

    it('when the record is read, then it never carries the secret hash', async () => {
      const store = new SqlKeyStore(db);
      const input = newKey();
      const record = await store.insert(input);
      expect(JSON.stringify(record)).not.toContain(input.secretHash);
      expect(JSON.stringify(await store.findByHash(input.secretHash))).not.toContain(input.secretHash);
    });

    it('when two keys share a secret hash, then the second insert fails and the first is untouched', async () => {
      const store = new SqlKeyStore(db);
      const first = newKey({ name: 'first' });
      await store.insert(first);
      await expect(store.insert(newKey({ secretHash: first.secretHash, name: 'second' }))).rejects.toThrow();
      const found = await store.findByHash(first.secretHash);
      expect(found?.id).toBe(first.id);
      expect(found?.name).toBe('first');
    });

    it('when a key says it replaced an unknown key, then the insert is refused', async () => {
      const store = new SqlKeyStore(db);
      await expect(store.insert(newKey({ rotatedFrom: uuidv7() }))).rejects.toThrow();
      const original = await store.insert(newKey());
      const replacement = await store.insert(newKey({ rotatedFrom: original.id }));
      expect(replacement.rotatedFrom).toBe(original.id);
    });

    it('when keys are listed, then they come in creation order, filtered by project, without revoked ones', async () => {
      const store = new SqlKeyStore(db);
      const project = uniqueProject();
      const a = await store.insert(newKey({ project, name: 'a' }));
      const b = await store.insert(newKey({ project, name: 'b' }));
      const c = await store.insert(newKey({ project, name: 'c' }));
      await store.insert(newKey({ project: uniqueProject(), name: 'elsewhere' }));
      await store.revoke(b.id, new Date());
      expect((await store.list({ project })).map((k) => k.id)).toEqual([a.id, c.id]);
      expect((await store.list({ project, includeRevoked: true })).map((k) => k.id)).toEqual([
        a.id,
        b.id,
        c.id,
      ]);
      const all = await store.list();
      expect(all.some((k) => k.id === a.id)).toBe(true);
      expect(all.some((k) => k.id === b.id)).toBe(false);
      expect(all.some((k) => k.name === 'elsewhere')).toBe(true);
    });

    it('when a project has no keys, then the list is empty', async () => {
      expect(await new SqlKeyStore(db).list({ project: uniqueProject(), includeRevoked: true })).toEqual([]);
    });

    it('when a key is revoked twice, then the first revocation time is kept', async () => {
      const store = new SqlKeyStore(db);
      const key = await store.insert(newKey());
      const first = new Date('2030-01-01T00:00:00.000Z');
      const revoked = await store.revoke(key.id, first);
      expect(revoked?.revokedAt?.getTime()).toBe(first.getTime());
      const again = await store.revoke(key.id, new Date('2031-01-01T00:00:00.000Z'));
      expect(again?.revokedAt?.getTime()).toBe(first.getTime());
      expect((await store.findById(key.id))?.revokedAt?.getTime()).toBe(first.getTime());
    });

    it('when an unknown key is revoked or expired, then nothing is returned and nothing changes', async () => {
      const store = new SqlKeyStore(db);
      const before = (await store.list({ includeRevoked: true })).length;
      expect(await store.revoke(uuidv7(), new Date())).toBeUndefined();
      expect(await store.expire(uuidv7(), new Date())).toBeUndefined();
      expect((await store.list({ includeRevoked: true })).length).toBe(before);
    });

    it('when a key without expiry is expired, then it gets that expiry', async () => {
      const store = new SqlKeyStore(db);
      const key = await store.insert(newKey());
      const at = new Date(Date.now() + 60_000);
      expect((await store.expire(key.id, at))?.expiresAt?.getTime()).toBe(at.getTime());
    });

    it('when an expiry is set earlier, then it is shortened; when set later, then it is never extended', async () => {
      const store = new SqlKeyStore(db);
      const original = new Date(Date.now() + 3_600_000);
      const key = await store.insert(newKey({ expiresAt: original }));
      const later = new Date(original.getTime() + 86_400_000);
      expect((await store.expire(key.id, later))?.expiresAt?.getTime()).toBe(original.getTime());
      const sooner = new Date(original.getTime() - 1_800_000);
      expect((await store.expire(key.id, sooner))?.expiresAt?.getTime()).toBe(sooner.getTime());
      expect((await store.expire(key.id, original))?.expiresAt?.getTime()).toBe(sooner.getTime());
      expect((await store.findById(key.id))?.expiresAt?.getTime()).toBe(sooner.getTime());
    });

    it('when admins are counted, then revoked admins and members do not count', async () => {
      const store = new SqlKeyStore(db);
      const before = await store.countAdmins();
      const admin = await store.insert(newKey({ role: 'admin' }));
      await store.insert(newKey({ role: 'member' }));
      expect(await store.countAdmins()).toBe(before + 1);
      await store.revoke(admin.id, new Date());
      expect(await store.countAdmins()).toBe(before);
    });
  });

  describe('outbox', () => {
    beforeEach(async () => {
      await db.query('delete from outbox');
    });

    it('when the same event is appended again, alone or in one batch, then it is stored and published once', async () => {
      const outbox = new SqlOutbox(db);
      const event = testEvent(1);
      await outbox.append([event]);
      await outbox.append([event]);
      await Promise.all([outbox.append([event, event]), outbox.append([event])]);
      expect(await countRows(db)).toBe(1);
      const bus = new RecordingBus();
      expect(await new OutboxRelay(db, bus).publishPending()).toBe(1);
      expect(bus.accepted).toEqual([event]);
    });

    it('when an empty list is appended, then nothing is written', async () => {
      const written = vi.fn();
      await new SqlOutbox(db, written).append([]);
      expect(await countRows(db)).toBe(0);
      expect(written).not.toHaveBeenCalled();
    });

    it('when many appends arrive at once, then they are group-committed in few writes and all land', async () => {
      let inserts = 0;
      const counting: Db = {
        kind: db.kind,
        query: (sql, params) => {
          if (sql.includes('insert into outbox')) inserts++;
          return db.query(sql, params);
        },
        transaction: (fn) => db.transaction(fn),
        exec: (sql) => db.exec(sql),
        close: () => db.close(),
      };
      const written = vi.fn();
      const outbox = new SqlOutbox(counting, written);
      const events = Array.from({ length: 300 }, (_, i) => testEvent(i));
      const appends = [
        ...events.slice(0, 200).map((e) => outbox.append([e])),
        ...Array.from({ length: 25 }, (_, i) => outbox.append(events.slice(200 + i * 4, 204 + i * 4))),
      ];
      await Promise.all(appends);
      expect(await countRows(db)).toBe(300);
      expect(inserts).toBeGreaterThan(0);
      expect(inserts).toBeLessThan(appends.length / 10);
      expect(written).toHaveBeenCalledTimes(inserts);
      const { rows } = await db.query<{ id: string }>('select id::text as id from outbox');
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set(events.map((e) => e.id)));
    });

    it('when an append resolves, then the event is already on storage (durable before the response)', async () => {
      const outbox = new SqlOutbox(db);
      const event = testEvent(7);
      await outbox.append([event]);
      const { rows } = await db.query<{ event: CloudEvent; type: string; subject: string | null }>(
        'select event, type, subject from outbox where id = $1::uuid',
        [event.id],
      );
      expect(rows[0]).toEqual({ event, type: event.type, subject: event.subject });
    });

    it('when an event has no subject, then it is stored with a null subject', async () => {
      const outbox = new SqlOutbox(db);
      const event = createEvent('dev.flowloom.test.contract.v1', 'flowloom/test', { n: 0 });
      await outbox.append([event]);
      const { rows } = await db.query<{ subject: string | null }>('select subject from outbox');
      expect(rows).toEqual([{ subject: null }]);
    });

    it('when the relay publishes over several batches, then events go out in append order', async () => {
      const outbox = new SqlOutbox(db);
      const events = Array.from({ length: 23 }, (_, i) => testEvent(i));
      for (const e of events) await outbox.append([e]);
      const bus = new RecordingBus();
      const relay = new OutboxRelay(db, bus, { batchSize: 5 });
      expect(await relay.publishPending()).toBe(23);
      expect(bus.accepted.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(bus.calls).toBe(5);
      expect(await countRows(db, 'published_at is null')).toBe(0);
      expect(await relay.publishPending()).toBe(0);
      expect(bus.accepted).toHaveLength(23);
    });

    it('when appends were concurrent, then the relay publishes in storage order', async () => {
      const outbox = new SqlOutbox(db);
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => outbox.append([testEvent(i), testEvent(100 + i)])),
      );
      const bus = new RecordingBus();
      await new OutboxRelay(db, bus, { batchSize: 7 }).publishPending();
      const { rows } = await db.query<{ id: string }>('select id::text as id from outbox order by seq');
      expect(bus.accepted.map((e) => e.id)).toEqual(rows.map((r) => r.id));
      expect(bus.accepted).toHaveLength(80);
    });

    it('when the bus refuses, then rows stay unpublished, and a later publish delivers them in order', async () => {
      const outbox = new SqlOutbox(db);
      const events = Array.from({ length: 6 }, (_, i) => testEvent(i));
      for (const e of events) await outbox.append([e]);
      const bus = new RecordingBus();
      bus.failAll = true;
      const relay = new OutboxRelay(db, bus);
      await expect(relay.publishPending()).rejects.toThrow(/bus refused/);
      expect(await countRows(db, 'published_at is null')).toBe(6);
      expect(bus.accepted).toEqual([]);
      bus.failAll = false;
      expect(await relay.publishPending()).toBe(6);
      expect(bus.accepted.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(await countRows(db, 'published_at is null')).toBe(0);
    });

    it('when the bus refuses a later batch, then earlier batches stay published and nothing is delivered twice', async () => {
      const outbox = new SqlOutbox(db);
      const events = Array.from({ length: 10 }, (_, i) => testEvent(i));
      for (const e of events) await outbox.append([e]);
      const bus = new RecordingBus();
      bus.failOn.add(2);
      const relay = new OutboxRelay(db, bus, { batchSize: 4 });
      await expect(relay.publishPending()).rejects.toThrow(/bus refused publish #2/);
      expect(bus.accepted.map((e) => e.id)).toEqual(events.slice(0, 4).map((e) => e.id));
      expect(await countRows(db, 'published_at is null')).toBe(6);
      expect(await relay.publishPending()).toBe(6);
      expect(bus.accepted.map((e) => e.id)).toEqual(events.map((e) => e.id));
    });

    it('when the relay runs, then an append wakes it and the event is published without a poll', async () => {
      const bus = new RecordingBus();
      const relay = new OutboxRelay(db, bus, { idleMs: 60_000 });
      const outbox = new SqlOutbox(db, () => relay.wake());
      relay.start();
      try {
        const event = testEvent(1);
        await outbox.append([event]);
        await vi.waitFor(() => expect(bus.accepted.map((e) => e.id)).toEqual([event.id]), { timeout: 5_000 });
      } finally {
        await relay.stop();
      }
    });

    it('when the running relay meets a refusing bus, then it reports the error and delivers once the bus is back', async () => {
      const bus = new RecordingBus();
      bus.failAll = true;
      const onError = vi.fn();
      const relay = new OutboxRelay(db, bus, { idleMs: 60_000, onError });
      const outbox = new SqlOutbox(db, () => relay.wake());
      relay.start();
      try {
        const event = testEvent(2);
        await outbox.append([event]);
        await vi.waitFor(() => expect(onError).toHaveBeenCalled(), { timeout: 5_000 });
        expect(await countRows(db, 'published_at is null')).toBe(1);
        bus.failAll = false;
        relay.wake();
        await vi.waitFor(() => expect(bus.accepted.map((e) => e.id)).toEqual([event.id]), { timeout: 5_000 });
        // The bus has it before the relay's transaction marking it published commits.
        await vi.waitFor(async () => expect(await countRows(db, 'published_at is null')).toBe(0), {
          timeout: 5_000,
        });
      } finally {
        await relay.stop();
      }
    });

    it('when the bus stays down under traffic, then new rows retry it at most once a second, and the bus coming back publishes at once', async () => {
      const bus = new RecordingBus();
      bus.failAll = true;
      const relay = new OutboxRelay(db, bus, { idleMs: 60_000 });
      const outbox = new SqlOutbox(db, () => relay.wake());
      relay.start();
      try {
        await outbox.append([testEvent(0)]);
        await vi.waitFor(() => expect(bus.calls).toBe(1), { timeout: 5_000 });
        // 1.5 s of requests, one every 20 ms: without the limit, each would cost a try.
        const events = [testEvent(0)];
        const until = Date.now() + 1_500;
        for (let i = 1; Date.now() < until; i++) {
          const event = testEvent(i);
          events.push(event);
          await outbox.append([event]);
          await new Promise((r) => setTimeout(r, 20));
        }
        expect(bus.calls).toBeGreaterThanOrEqual(2);
        expect(bus.calls).toBeLessThanOrEqual(3);
        // The back-off has grown past a second; the bus's reconnect cuts it short.
        bus.failAll = false;
        const back = Date.now();
        relay.retryNow();
        await vi.waitFor(() => expect(bus.accepted).toHaveLength(events.length), { timeout: 5_000 });
        expect(Date.now() - back).toBeLessThan(500);
      } finally {
        await relay.stop();
      }
    });

    it('when the relay stops, then it publishes what is still pending first', async () => {
      const bus = new RecordingBus();
      const relay = new OutboxRelay(db, bus, { idleMs: 60_000 });
      relay.start();
      // No wake-up: only stop() can deliver these.
      const outbox = new SqlOutbox(db);
      const events = [testEvent(1), testEvent(2)];
      await outbox.append(events);
      await relay.stop();
      expect(bus.accepted.map((e) => e.id)).toEqual(events.map((e) => e.id));
    });

    it('when a relay holds a batch, then a second relay on the same database skips those rows', async () => {
      const otherDb = await database.openAnother();
      const outbox = new SqlOutbox(db);
      const events = Array.from({ length: 10 }, (_, i) => testEvent(i));
      await outbox.append(events);
      const busA = new RecordingBus();
      let openGate: () => void = () => {};
      busA.gate = new Promise<void>((resolve) => {
        openGate = resolve;
      });
      const reached = new Promise<void>((resolve) => {
        busA.reachedGate = resolve;
      });
      const busB = new RecordingBus();
      const relayA = new OutboxRelay(db, busA, { batchSize: 100 });
      const relayB = new OutboxRelay(otherDb, busB, { batchSize: 100 });
      const a = relayA.publishPending();
      await reached;
      const b = relayB.publishPending();
      // On PostgreSQL B returns at once with nothing; on PGlite it waits for A's transaction.
      await Promise.race([b, new Promise((resolve) => setTimeout(resolve, 200))]);
      openGate();
      const [publishedA, publishedB] = await Promise.all([a, b]);
      expect(publishedA).toBe(10);
      expect(publishedB).toBe(0);
      expect(busB.accepted).toEqual([]);
      expect(busA.accepted.map((e) => e.id)).toEqual(events.map((e) => e.id));
    });

    it('when two relays run at once, then one publishes at a time and the events reach the bus in storage order', async () => {
      const otherDb = await database.openAnother();
      const outbox = new SqlOutbox(db);
      const events = Array.from({ length: 10 }, (_, i) => testEvent(i));
      await outbox.append(events);
      // One bus for both replicas, as Kafka is; its first publish is held until released.
      const accepted: string[] = [];
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let reachedHold: () => void = () => {};
      const reached = new Promise<void>((resolve) => {
        reachedHold = resolve;
      });
      let calls = 0;
      const bus = new RecordingBus();
      bus.publish = async (batch) => {
        calls++;
        if (calls === 1) {
          reachedHold();
          await held;
        }
        accepted.push(...batch.map((e) => e.id));
      };
      const relayA = new OutboxRelay(db, bus, { batchSize: 5 });
      const relayB = new OutboxRelay(otherDb, bus, { batchSize: 5 });
      const a = relayA.publishPending();
      await reached;
      const b = relayB.publishPending();
      await Promise.race([b, new Promise((resolve) => setTimeout(resolve, 200))]);
      release();
      await Promise.all([a, b]);
      await relayB.publishPending();
      expect(accepted).toEqual(events.map((e) => e.id));
    });

    it('when two relays are asked to publish concurrently, then every row goes out exactly once', async () => {
      const otherDb = await database.openAnother();
      const outbox = new SqlOutbox(db);
      const events = Array.from({ length: 60 }, (_, i) => testEvent(i));
      await outbox.append(events);
      const busA = new RecordingBus();
      const busB = new RecordingBus();
      busA.delayMs = 15;
      busB.delayMs = 15;
      const relayA = new OutboxRelay(db, busA, { batchSize: 5 });
      const relayB = new OutboxRelay(otherDb, busB, { batchSize: 5 });
      await Promise.all([relayA.publishPending(), relayB.publishPending(), relayB.publishPending()]);
      // A relay that found only locked rows stops early; whatever is left goes out now.
      await relayA.publishPending();
      const ids = [...busA.accepted, ...busB.accepted].map((e) => e.id);
      expect(ids).toHaveLength(60);
      expect(new Set(ids)).toEqual(new Set(events.map((e) => e.id)));
      expect(await countRows(db, 'published_at is null')).toBe(0);
    });
  });
});

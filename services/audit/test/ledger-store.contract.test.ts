import { createEvent } from '@flowloom/contracts';
import {
  canonicalize,
  leafHash,
  merkleTreeHash,
  openCheckpoint,
  parseVerifierKey,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from '@flowloom/ledger';
import { countTurns } from '@flowloom/ledger/testing/event-loop';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalAuditSource } from '../src/app/local-source.js';
import { verifyLog } from '../src/app/verify-log.js';
import { LedgerConflictError } from '../src/ports/ledger-store.js';
import type { TestDatabase } from './databases.js';
import {
  COMPLETED,
  ENGINES,
  FAILED,
  KEY_CHANGED,
  openTestDatabase,
  openTestLedger,
  requestEvent,
  TEST_ORIGIN,
  type TestLedger,
} from './support.js';

// One contract for the ledger's storage, run against PGlite and a real PostgreSQL: the embedded
// and the distributed installs must behave the same.

for (const engine of ENGINES) {
  describe(`audit ledger storage on ${engine}`, () => {
    let database: TestDatabase;
    let t: TestLedger;
    const events = Array.from({ length: 25 }, (_, i) => requestEvent(i));

    beforeAll(async () => {
      database = await openTestDatabase(engine);
      t = await openTestLedger(database.db);
    });
    afterAll(async () => {
      await t?.ledger.close();
      t?.cleanup();
      await database?.drop();
    });

    it('when events are appended in batches and some redelivered, then each lands once at consecutive indexes', async () => {
      const first = await t.ledger.append(events.slice(0, 10));
      const second = await t.ledger.append(events.slice(5, 20));
      const third = await t.ledger.append([...events.slice(20), ...events.slice(0, 3)]);
      expect(first).toEqual({ appended: 10, duplicates: 0, treeSize: 10 });
      expect(second).toMatchObject({ appended: 10, duplicates: 5 });
      expect(third).toEqual({ appended: 5, duplicates: 3, treeSize: 25 });
      for (const [i, event] of events.entries()) {
        expect(await t.store.indexOfEvent(event.id)).toBe(i);
      }
    });

    it('when a writer appends after the log moved on (another writer appended), then it is refused and stores nothing', async () => {
      const size = await t.store.treeSize();
      const stale = size - 1;
      const event = requestEvent(5000);
      const entry = canonicalize(event);
      const row = {
        index: stale,
        eventId: event.id,
        leafHash: leafHash(new TextEncoder().encode(entry)),
        entry,
        time: event.time,
        type: event.type,
        source: event.source,
        subject: null,
        actor: null,
        keyId: null,
        project: null,
        job: null,
        outcome: null,
      };
      const tile = { startSize: stale, endSize: size, hashes: new Uint8Array(32) };
      await expect(t.store.append([row], tile)).rejects.toBeInstanceOf(LedgerConflictError);
      expect(await t.store.treeSize()).toBe(size);
      expect(await t.store.indexOfEvent(event.id)).toBeUndefined();
    });

    it('when many callers append overlapping events at once, then group commit appends each id once', async () => {
      const before = t.ledger.size;
      const burst = Array.from({ length: 40 }, (_, i) => requestEvent(1000 + i));
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, c) => t.ledger.append(burst.slice(c, c + 21))),
      );
      expect(t.ledger.size).toBe(before + 40);
      expect(outcomes.reduce((sum, o) => sum + o.appended, 0)).toBe(40);
      const ids = new Set<string>();
      for (let start = before; start < t.ledger.size; start += 100) {
        const page = await t.store.bundlePage(start, start + 100);
        for (const line of page.lines) ids.add((JSON.parse(line) as { id: string }).id);
      }
      expect(ids).toEqual(new Set(burst.map((e) => e.id)));
    });

    it('when an entry is stored, then it is the RFC 8785 canonical event and its leaf hash is SHA-256(0x00 ‖ entry)', async () => {
      const event = events[7];
      const view = await t.ledger.entry(7);
      expect(view?.entry).toBe(canonicalize(event));
      expect(
        Buffer.from(view?.leafHash ?? []).equals(Buffer.from(leafHash(Buffer.from(view?.entry ?? '')))),
      ).toBe(true);
      expect(view).toMatchObject({ type: COMPLETED, actor: 'user-1', keyId: 'key-2', project: 'project-1' });
    });

    it('when a checkpoint is signed, then it verifies with the published key and commits to the stored entries', async () => {
      const checkpoint = await t.ledger.checkpoint();
      const keys = (await t.ledger.verifierKeys()).map((k) => parseVerifierKey(k));
      const opened = openCheckpoint(checkpoint.note, keys, TEST_ORIGIN);
      expect(opened.checkpoint.size).toBe(t.ledger.size);
      const leaves: Uint8Array[] = [];
      const page = await t.store.bundlePage(0, t.ledger.size);
      for (const line of page.lines) leaves.push(leafHash(Buffer.from(line)));
      expect(Buffer.from(merkleTreeHash(leaves)).equals(Buffer.from(opened.checkpoint.rootHash))).toBe(true);
      // Nothing new: the same checkpoint comes back.
      expect((await t.ledger.checkpoint()).id).toBe(checkpoint.id);
      // Found again by its size; a size never signed has none.
      expect((await t.store.checkpointAt(checkpoint.treeSize))?.note).toBe(checkpoint.note);
      expect(await t.store.checkpointAt(checkpoint.treeSize + 1)).toBeUndefined();
    });

    it('when inclusion and consistency proofs are read from storage, then they verify (RFC 9162)', async () => {
      const size = t.ledger.size;
      const root = (await t.ledger.consistencyProof(size, size)).root2;
      for (const index of [0, 1, 7, 24, size - 1]) {
        const proof = await t.ledger.inclusionProof(index, size);
        expect(verifyInclusion(index, size, proof.leafHash, proof.proof, root)).toBe(true);
        expect(verifyInclusion(index, size, leafHash(Buffer.from('forged')), proof.proof, root)).toBe(false);
      }
      for (const older of [1, 3, 10, 25, size - 1]) {
        const c = await t.ledger.consistencyProof(older, size);
        expect(verifyConsistency(older, size, c.proof, c.root1, root)).toBe(true);
      }
      const byEvent = await t.ledger.inclusionProofByEvent(events[3]?.id ?? '', size);
      expect(byEvent.index).toBe(3);
      expect(verifyInclusion(3, size, byEvent.leafHash, byEvent.proof, byEvent.rootHash)).toBe(true);
      // Proofs against a past size, served partly from memory, still verify against that size's root.
      const past = await t.ledger.consistencyProof(10, size);
      for (const index of [0, 9]) {
        const proof = await t.ledger.inclusionProof(index, 10);
        expect(toHex(proof.rootHash)).toBe(toHex(past.root1));
        expect(verifyInclusion(index, 10, proof.leafHash, proof.proof, past.root1)).toBe(true);
      }
    });

    it('when an entry is looked up for a proof, then index and event id give the same reference', async () => {
      const byIndex = await t.store.entryRef({ index: 4 });
      const byEvent = await t.store.entryRef({ eventId: events[4]?.id ?? '' });
      expect(byIndex).toEqual(byEvent);
      expect(byIndex?.eventId).toBe(events[4]?.id);
      expect(toHex(byIndex?.leafHash ?? new Uint8Array())).toBe(
        toHex((await t.store.entry(4))?.leafHash ?? new Uint8Array()),
      );
      expect(await t.store.entryRef({ eventId: 'no-such-event' })).toBeUndefined();
      expect(await t.store.entryRef({ index: 1_000_000 })).toBeUndefined();
    });

    it('when the ledger is reopened, then the tree continues and stays consistent with the old checkpoint', async () => {
      const old = await t.ledger.checkpoint();
      await t.ledger.close();
      t = { ...t, ledger: await t.reopen() };
      expect(t.ledger.size).toBe(old.treeSize);
      await t.ledger.append([requestEvent(5000), requestEvent(5001)]);
      const c = await t.ledger.consistencyProof(old.treeSize, t.ledger.size);
      expect(verifyConsistency(old.treeSize, t.ledger.size, c.proof, old.rootHash, c.root2)).toBe(true);
      // Same key, same origin.
      expect(t.ledger.keyId).toBe(old.keyId);
    });

    it('when entries are filtered, then every field narrows the result and pages chain by cursor', async () => {
      const at = new Date('2031-03-01T10:00:00Z');
      const tagged = [
        requestEvent(9001, { project: 'apollo', job: 'nightly', owner: 'alice', keyId: 'k-alpha', at }),
        requestEvent(9002, { project: 'apollo', owner: 'bob', keyId: 'k-beta', failed: true, at }),
        createEvent(KEY_CHANGED, 'flowloom/gateway', {
          keyId: 'k-gamma',
          action: 'revoked',
          actor: 'carol',
          name: 'ci',
        }),
      ];
      await t.ledger.append(tagged);
      const q = (filter: Record<string, unknown>) =>
        t.ledger.query({ limit: 100, order: 'desc', ...filter }).then((rows) => rows.map((r) => r.eventId));
      expect(await q({ project: 'apollo' })).toEqual([tagged[1]?.id, tagged[0]?.id]);
      expect(await q({ job: 'nightly' })).toEqual([tagged[0]?.id]);
      expect(await q({ actor: 'carol' })).toEqual([tagged[2]?.id]);
      expect(await q({ keyId: 'k-beta' })).toEqual([tagged[1]?.id]);
      expect(await q({ outcome: 'rate_limited', project: 'apollo' })).toEqual([tagged[1]?.id]);
      expect(await q({ outcome: 'revoked' })).toEqual([tagged[2]?.id]);
      expect(await q({ type: FAILED, project: 'apollo' })).toEqual([tagged[1]?.id]);
      expect(await q({ type: 'dev.flowloom.gateway.key.*' })).toEqual([tagged[2]?.id]);
      expect(await q({ from: at, to: new Date(at.getTime() + 1), project: 'apollo' })).toHaveLength(2);
      expect(await q({ to: at, project: 'apollo' })).toEqual([]);
      expect(await q({ text: 'slow down request 9002' })).toEqual([tagged[1]?.id]);

      const all: number[] = [];
      let cursor: number | undefined;
      for (;;) {
        const rows = await t.ledger.query({ limit: 7, order: 'asc', cursor });
        all.push(...rows.map((r) => r.index));
        if (rows.length < 7) break;
        cursor = rows[rows.length - 1]?.index;
      }
      expect(all).toEqual(Array.from({ length: t.ledger.size }, (_, i) => i));
    });

    it('when attribute values hold quotes, backslashes, control characters and non-ASCII, then they are stored and found exactly', async () => {
      const odd = 'a"b\\c\nd\t\u001f é 😀 \\u0041';
      const event = requestEvent(9100, { project: odd, owner: `${odd}-owner`, job: `${odd}-job` });
      await t.ledger.append([event]);
      const found = await t.ledger.query({ limit: 10, order: 'desc', project: odd });
      expect(found.map((r) => [r.eventId, r.project, r.actor, r.job])).toEqual([
        [event.id, odd, `${odd}-owner`, `${odd}-job`],
      ]);
    });

    it('when a large delivery is appended, then the event loop gets turns while it is prepared', async () => {
      // The appending thread also answers requests in `flowloom up`: a probe on the delivery's last
      // event records how many turns other work had before that event was reached.
      const delivery = Array.from({ length: 1200 }, (_, i) => requestEvent(20_000 + i));
      let turnsBeforeLast = -1;
      Object.defineProperty(delivery[delivery.length - 1]?.data, 'probe', {
        enumerable: true,
        get: () => {
          turnsBeforeLast = loop.turns;
          return 'probe';
        },
      });
      const loop = countTurns();
      const outcome = await t.ledger.append(delivery);
      loop.stop();
      expect(outcome.appended).toBe(1200);
      expect(turnsBeforeLast).toBeGreaterThan(0);
    });

    it('when filter values carry SQL, then they are only data: nothing matches and nothing changes', async () => {
      const size = t.ledger.size;
      const hostile = ["' or '1'='1", "x'); delete from audit_entries; --", '%', '_', '\\', 'apollo%'];
      for (const value of hostile) {
        expect(await t.ledger.query({ limit: 10, order: 'desc', project: value })).toEqual([]);
        expect(await t.ledger.query({ limit: 10, order: 'desc', actor: value })).toEqual([]);
        expect(await t.ledger.query({ limit: 10, order: 'desc', type: `${value}*` })).toEqual([]);
        await t.ledger.query({ limit: 10, order: 'desc', text: value });
      }
      expect(
        await t.ledger.query({ limit: 10, order: 'desc', text: "'; drop table audit_entries; --" }),
      ).toEqual([]);
      expect(await t.store.treeSize()).toBe(size);
      expect((await t.store.bundlePage(0, size)).lines).toHaveLength(size);
    });

    it('when a bundle page is filtered, then non-matching entries become markers of their leaf hash', async () => {
      const size = t.ledger.size;
      const page = await t.store.bundlePage(0, size, { project: 'apollo' });
      expect(page.lines).toHaveLength(size);
      expect(page.matched).toHaveLength(2);
      page.lines.forEach((line, i) => {
        const stored = Buffer.from(page.leafHashes.subarray(i * 32, (i + 1) * 32));
        if (page.matched.includes(i)) expect(JSON.parse(line).data.project).toBe('apollo');
        else expect(line).toBe(`{"$pruned":"${stored.toString('hex')}"}`);
      });
    });

    it('when the whole log is verified from storage, then it passes and counts every checkpoint', async () => {
      await t.ledger.checkpoint();
      const report = await verifyLog(new LocalAuditSource(t.ledger, engine), { pageSize: 16 });
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ ok: true, entryCount: t.ledger.size, unsignedEntries: 0 });
      expect(report.checkpointsVerified).toBeGreaterThanOrEqual(2);
    });
  });
}

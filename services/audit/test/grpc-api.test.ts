import { InProcessBus } from '@flowloom/bus';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { openCheckpoint, parseVerifierKey, verifyConsistency, verifyInclusion } from '@flowloom/ledger';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditGrpcClient } from '../src/grpc/server.js';
import { type StandaloneAudit, startAudit } from '../src/main.js';
import type { TestDatabase } from './databases.js';
import {
  FAILED,
  KEY_CHANGED,
  openTestDatabase,
  requestEvent,
  standaloneAuditConfig,
  tempDir,
} from './support.js';

// The standalone audit service's gRPC API through a real @grpc/grpc-js client, on PostgreSQL:
// consistency and inclusion proofs (also against an earlier checkpoint) that the ledger library's
// verifier accepts, full-text queries, every query filter, and bad input answered INVALID_ARGUMENT.
// Where the HTTP API offers the same thing, it is asked too and must agree.

const ADMIN = 'flk_audit-grpc-admin-key-0123456789abcdef';

interface ConsistencyProof {
  fromSize: number;
  toSize: number;
  fromRoot: Buffer;
  toRoot: Buffer;
  proof: Buffer[];
  checkpoint: string;
}
interface Checkpoint {
  treeSize: number;
  rootHash: Buffer;
  keyId: string;
  note: string;
}
interface InclusionProof {
  index: number;
  treeSize: number;
  leafHash: Buffer;
  rootHash: Buffer;
  proof: Buffer[];
  checkpoint: string;
}
interface Entry {
  index: number;
  eventId: string;
  type: string;
  actor: string;
  keyId: string;
  project: string;
  job: string;
  outcome: string;
  entry: string;
}
/** A unary method of a client made by grpc.loadPackageDefinition. */
type UnaryCall<Res> = (
  request: object,
  metadata: grpc.Metadata,
  callback: (error: grpc.ServiceError | null, response: Res) => void,
) => void;

interface QueryResponse {
  entries: Entry[];
  nextCursor: string;
  notSearched: number;
}

/** A failed request whose error message says `message` (what full-text search looks into). */
function failedWith(i: number, message: string, project: string): CloudEvent {
  return createEvent(
    FAILED,
    'flowloom/gateway',
    {
      requestId: `req-grpc-${i}`,
      keyId: 'key-grpc',
      owner: 'ci',
      project,
      api: 'openai',
      operation: 'chat',
      model: 'flowloom-local',
      stream: false,
      latencyMs: 4,
      attempts: 1,
      errorCode: 'upstream_error',
      errorMessage: message,
      httpStatus: 502,
    },
    'key/key-grpc',
  );
}

describe('the audit gRPC API', () => {
  let database: TestDatabase;
  let audit: StandaloneAudit;
  let bus: InProcessBus;
  let client: grpc.Client;
  const dir = tempDir();

  const invoke = <Res>(method: string, request: object, key: string | null = ADMIN): Promise<Res> => {
    const metadata = new grpc.Metadata();
    if (key) metadata.set('authorization', `Bearer ${key}`);
    const fn = (client as unknown as Record<string, UnaryCall<Res> | undefined>)[method];
    if (!fn) throw new Error(`no gRPC method ${method}`);
    return new Promise<Res>((resolve, reject) => {
      fn.call(client, request, metadata, (error, response) => (error ? reject(error) : resolve(response)));
    });
  };
  const status = async (promise: Promise<unknown>): Promise<{ code: number; details: string }> => {
    try {
      await promise;
    } catch (error) {
      const { code, details } = error as grpc.ServiceError;
      return { code, details };
    }
    throw new Error('the call succeeded');
  };

  /** GET on the same service's HTTP API as an admin; the parsed JSON body. */
  const httpGet = async <Res>(path: string): Promise<Res> => {
    const response = await fetch(`${audit.httpUrl}${path}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as Res;
  };
  const b64 = (s: string): Buffer => Buffer.from(s, 'base64');

  const appendAll = async (events: CloudEvent[]): Promise<void> => {
    const target = audit.service.ledger.size + events.length;
    await bus.publish(events);
    const deadline = Date.now() + 10_000;
    while (audit.service.ledger.size < target) {
      if (Date.now() > deadline)
        throw new Error(`ledger at ${audit.service.ledger.size}, expected ${target}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  beforeAll(async () => {
    database = await openTestDatabase('postgres');
    bus = new InProcessBus();
    const config = standaloneAuditConfig(dir.path, ADMIN, { checkpointIntervalMs: 3_600_000 });
    audit = await startAudit({ config, db: database.db, bus });
    const Audit = auditGrpcClient();
    client = new Audit(audit.grpcAddress, grpc.credentials.createInsecure());
    await appendAll([
      ...Array.from({ length: 11 }, (_, i) => requestEvent(i)),
      failedWith(1, 'the quokka upstream refused the connection', 'apollo'),
      failedWith(2, 'a wombat timed out', 'apollo'),
    ]);
  });
  afterAll(async () => {
    client?.close();
    await audit?.close();
    await bus?.close();
    await database?.drop();
    dir.remove();
  });

  describe('GetConsistencyProof', () => {
    let first: Checkpoint;
    let second: Checkpoint;
    let verifierKeys: ReturnType<typeof parseVerifierKey>[];

    beforeAll(async () => {
      first = await invoke<Checkpoint>('issueCheckpoint', {});
      await appendAll([
        ...Array.from({ length: 9 }, (_, i) => requestEvent(200 + i)),
        failedWith(3, 'the quokka came back with a 502', 'zeus'),
      ]);
      second = await invoke<Checkpoint>('issueCheckpoint', {});
      const keys = await invoke<{ origin: string; verifierKeys: string[] }>('getPublicKeys', {}, null);
      verifierKeys = keys.verifierKeys.map(parseVerifierKey);
    });

    it('when asked between two signed checkpoints, then the proof verifies with the ledger verifier and the roots are the signed ones', async () => {
      expect(second.treeSize).toBeGreaterThan(first.treeSize);
      const proof = await invoke<ConsistencyProof>('getConsistencyProof', {
        fromSize: first.treeSize,
        toSize: second.treeSize,
      });
      expect(proof).toMatchObject({ fromSize: first.treeSize, toSize: second.treeSize });
      expect(proof.proof.length).toBeGreaterThan(0);
      expect(Buffer.from(proof.fromRoot).equals(first.rootHash)).toBe(true);
      expect(Buffer.from(proof.toRoot).equals(second.rootHash)).toBe(true);
      expect(verifyConsistency(proof.fromSize, proof.toSize, proof.proof, proof.fromRoot, proof.toRoot)).toBe(
        true,
      );
      // The checkpoints' roots are what their notes sign.
      for (const c of [first, second]) {
        const opened = openCheckpoint(c.note, verifierKeys);
        expect(opened.checkpoint.size).toBe(c.treeSize);
        expect(Buffer.from(opened.checkpoint.rootHash).equals(c.rootHash)).toBe(true);
      }
    });

    it('when to_size is 0, then the proof reaches the latest checkpoint, whose signed note comes with it', async () => {
      const proof = await invoke<ConsistencyProof>('getConsistencyProof', { fromSize: 3 });
      expect(proof.toSize).toBe(second.treeSize);
      const opened = openCheckpoint(proof.checkpoint, verifierKeys);
      expect(opened.checkpoint.size).toBe(proof.toSize);
      expect(Buffer.from(opened.checkpoint.rootHash).equals(Buffer.from(proof.toRoot))).toBe(true);
      expect(verifyConsistency(3, proof.toSize, proof.proof, proof.fromRoot, proof.toRoot)).toBe(true);
    });

    it('when a proof hash or a size is altered, then the verifier rejects it', async () => {
      const proof = await invoke<ConsistencyProof>('getConsistencyProof', {
        fromSize: first.treeSize,
        toSize: second.treeSize,
      });
      const bent = proof.proof.map((p) => Buffer.from(p));
      bent[0]![0]! ^= 1;
      expect(verifyConsistency(proof.fromSize, proof.toSize, bent, proof.fromRoot, proof.toRoot)).toBe(false);
      expect(
        verifyConsistency(proof.fromSize - 1, proof.toSize, proof.proof, proof.fromRoot, proof.toRoot),
      ).toBe(false);
    });

    it("when an inclusion proof is asked at the tree size of an earlier checkpoint, then it verifies against that checkpoint's signed root, over gRPC and HTTP", async () => {
      const signedRoot = openCheckpoint(first.note, verifierKeys).checkpoint.rootHash;
      for (const index of [0, 4, first.treeSize - 1]) {
        const grpcProof = await invoke<InclusionProof>('getInclusionProof', {
          index,
          treeSize: first.treeSize,
        });
        expect(grpcProof).toMatchObject({ index, treeSize: first.treeSize });
        expect(Buffer.from(grpcProof.rootHash).equals(first.rootHash)).toBe(true);
        // The proof comes with the signed checkpoint of that size, though a later one exists.
        expect(grpcProof.checkpoint).toBe(first.note);
        expect(
          verifyInclusion(index, first.treeSize, grpcProof.leafHash, grpcProof.proof, signedRoot),
          `gRPC, entry ${index}`,
        ).toBe(true);
        // The same path does not prove the entry in the larger, later tree: the size was honoured.
        expect(
          verifyInclusion(index, second.treeSize, grpcProof.leafHash, grpcProof.proof, second.rootHash),
        ).toBe(false);
        const httpProof = await httpGet<{
          treeSize: number;
          leafHash: string;
          proof: string[];
          checkpoint: string | null;
        }>(`/api/v1/audit/proofs/inclusion?index=${index}&treeSize=${first.treeSize}`);
        expect(httpProof.treeSize).toBe(first.treeSize);
        expect(httpProof.checkpoint).toBe(first.note);
        expect(
          verifyInclusion(
            index,
            first.treeSize,
            b64(httpProof.leafHash),
            httpProof.proof.map(b64),
            signedRoot,
          ),
          `HTTP, entry ${index}`,
        ).toBe(true);
      }
      // By event id too, and the entry past the earlier tree is refused rather than proven in it.
      const byEvent = await invoke<InclusionProof>('getInclusionProof', {
        eventId: (await invoke<QueryResponse>('queryEntries', { ascending: true, limit: 3 })).entries[2]!
          .eventId,
        treeSize: first.treeSize,
      });
      expect(verifyInclusion(2, first.treeSize, byEvent.leafHash, byEvent.proof, signedRoot)).toBe(true);
      expect(
        (await status(invoke('getInclusionProof', { index: first.treeSize, treeSize: first.treeSize }))).code,
      ).toBe(grpc.status.NOT_FOUND);
    });

    it('when HTTP is asked for a consistency proof between two sizes (from, to), then it verifies between the two signed roots', async () => {
      const proof = await httpGet<{
        from: number;
        to: number;
        fromRoot: string;
        toRoot: string;
        proof: string[];
      }>(`/api/v1/audit/proofs/consistency?from=${first.treeSize}&to=${second.treeSize}`);
      expect(proof).toMatchObject({ from: first.treeSize, to: second.treeSize, checkpoint: second.note });
      const fromRoot = openCheckpoint(first.note, verifierKeys).checkpoint.rootHash;
      const toRoot = openCheckpoint(second.note, verifierKeys).checkpoint.rootHash;
      expect(b64(proof.fromRoot).equals(Buffer.from(fromRoot))).toBe(true);
      expect(b64(proof.toRoot).equals(Buffer.from(toRoot))).toBe(true);
      expect(verifyConsistency(first.treeSize, second.treeSize, proof.proof.map(b64), fromRoot, toRoot)).toBe(
        true,
      );
      // A size between the checkpoints: the proof is of that prefix, not of the latest tree.
      const middle = await httpGet<{
        to: number;
        toRoot: string;
        proof: string[];
        checkpoint: string | null;
      }>(`/api/v1/audit/proofs/consistency?from=${first.treeSize}&to=${first.treeSize + 3}`);
      expect(middle).toMatchObject({ to: first.treeSize + 3, checkpoint: null });
      expect(
        verifyConsistency(
          first.treeSize,
          first.treeSize + 3,
          middle.proof.map(b64),
          fromRoot,
          b64(middle.toRoot),
        ),
      ).toBe(true);
      expect(b64(middle.toRoot).equals(Buffer.from(toRoot))).toBe(false);
    });

    it('when from_size exceeds to_size or the tree, then INVALID_ARGUMENT says so; without a key, UNAUTHENTICATED', async () => {
      expect(await status(invoke('getConsistencyProof', { fromSize: 5, toSize: 2 }))).toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: expect.stringMatching(/from \(5\) must not exceed to \(2\)/),
      });
      const beyond = await status(
        invoke('getConsistencyProof', { fromSize: 1, toSize: second.treeSize + 1_000 }),
      );
      expect(beyond.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(beyond.details).not.toMatch(/internal/i);
      expect((await status(invoke('getConsistencyProof', { fromSize: 1, toSize: 2 }, null))).code).toBe(
        grpc.status.UNAUTHENTICATED,
      );
    });
  });

  describe('QueryEntries', () => {
    it('when searching full text, then exactly the events whose text has the word come back, newest first', async () => {
      const found = await invoke<QueryResponse>('queryEntries', { text: 'quokka' });
      expect(found.notSearched).toBe(0);
      const messages = found.entries.map(
        (e) => (JSON.parse(e.entry) as { data: { errorMessage: string } }).data.errorMessage,
      );
      expect(messages).toEqual([
        'the quokka came back with a 502',
        'the quokka upstream refused the connection',
      ]);
      expect(found.entries[0]!.index).toBeGreaterThan(found.entries[1]!.index);
      expect(found.entries.every((e) => e.type === FAILED && e.outcome === 'upstream_error')).toBe(true);
      expect(found.nextCursor).toBe('');
    });

    it('when full text is combined with filters, paging and order, then they all apply', async () => {
      const apollo = await invoke<QueryResponse>('queryEntries', { text: 'quokka', project: 'apollo' });
      expect(apollo.entries.map((e) => e.project)).toEqual(['apollo']);
      const both = await invoke<QueryResponse>('queryEntries', {
        text: 'upstream connection',
        type: 'dev.flowloom.gateway.*',
      });
      expect(both.entries).toHaveLength(1);
      expect(both.entries[0]!.entry).toContain('quokka upstream refused');
      const page = await invoke<QueryResponse>('queryEntries', { text: 'quokka', limit: 1, ascending: true });
      expect(page.entries).toHaveLength(1);
      expect(page.entries[0]!.entry).toContain('refused');
      const next = await invoke<QueryResponse>('queryEntries', {
        text: 'quokka',
        limit: 1,
        ascending: true,
        cursor: page.nextCursor,
      });
      expect(next.entries.map((e) => e.entry)).toEqual([expect.stringContaining('came back')]);
      expect((await invoke<QueryResponse>('queryEntries', { text: 'platypus' })).entries).toEqual([]);
    });

    it('when the search text holds query syntax or SQL, then it is taken as words and nothing breaks', async () => {
      for (const text of ["quokka' or 1=1 --", 'quokka & !wombat | (', "'; drop table audit_entries; --"]) {
        const result = await invoke<QueryResponse>('queryEntries', { text });
        expect(result.entries.every((e) => e.entry.includes('quokka'))).toBe(true);
      }
      expect((await invoke<QueryResponse>('queryEntries', { text: 'wombat' })).entries).toHaveLength(1);
    });

    it('when an argument is bad, then INVALID_ARGUMENT names it and nothing is searched', async () => {
      const cases: [object, RegExp][] = [
        [{ limit: 5000 }, /limit/],
        [{ type: 'Not A Type' }, /type/],
        [{ from: 'yesterday' }, /from/],
        [{ to: '2026-13-45T99:00:00Z' }, /to/],
        [{ cursor: 'abc' }, /cursor/],
        [{ text: 'x'.repeat(501) }, /text/],
        [{ project: 'p'.repeat(201) }, /project/],
      ];
      for (const [request, named] of cases) {
        const refused = await status(invoke('queryEntries', request));
        expect(refused.code, JSON.stringify(request).slice(0, 60)).toBe(grpc.status.INVALID_ARGUMENT);
        expect(refused.details).toMatch(named);
      }
      expect((await status(invoke('queryEntries', { text: 'quokka' }, 'flk_not-a-real-key'))).code).toBe(
        grpc.status.UNAUTHENTICATED,
      );
    });
  });

  describe("QueryEntries filters, and the HTTP API's equivalents", () => {
    const at = (month: number) => new Date(Date.UTC(2024, month - 1, 1));
    // Each filter value picks a different subset, so a filter ignored, swapped for another or
    // applied to the wrong column shows.
    const events = {
      a: requestEvent(900, { keyId: 'key-amber', owner: 'alice', job: 'nightly-etl', at: at(1) }),
      b: requestEvent(901, {
        keyId: 'key-basalt',
        owner: 'bob',
        job: 'nightly-etl',
        at: at(2),
        failed: true,
      }),
      c: requestEvent(902, { keyId: 'key-amber', owner: 'bob', at: at(3) }),
      d: createEvent(
        KEY_CHANGED,
        'flowloom/gateway',
        { keyId: 'key-coral', action: 'revoked', actor: 'carol', name: 'old ci' },
        'key/key-coral',
        at(4).getTime(),
      ),
    };
    type Name = keyof typeof events;
    const nameOf = new Map(Object.entries(events).map(([name, e]) => [e.id, name]));
    const iso = (month: number) => at(month).toISOString();

    const cases: Array<{ grpc: Record<string, string>; http: string; expected: Name[] }> = [
      { grpc: { from: iso(2), to: iso(4) }, http: `from=${iso(2)}&to=${iso(4)}`, expected: ['b', 'c'] },
      { grpc: { to: iso(2) }, http: `to=${iso(2)}`, expected: ['a'] },
      { grpc: { from: iso(4), to: iso(5) }, http: `from=${iso(4)}&to=${iso(5)}`, expected: ['d'] },
      { grpc: { actor: 'bob' }, http: 'actor=bob', expected: ['b', 'c'] },
      { grpc: { actor: 'carol' }, http: 'actor=carol', expected: ['d'] },
      { grpc: { keyId: 'key-amber' }, http: 'key=key-amber', expected: ['a', 'c'] },
      { grpc: { keyId: 'key-coral' }, http: 'key=key-coral', expected: ['d'] },
      { grpc: { job: 'nightly-etl' }, http: 'job=nightly-etl', expected: ['a', 'b'] },
      { grpc: { outcome: 'rate_limited' }, http: 'outcome=rate_limited', expected: ['b'] },
      { grpc: { outcome: 'revoked' }, http: 'outcome=revoked', expected: ['d'] },
      {
        grpc: { outcome: 'completed', to: iso(5) },
        http: `outcome=completed&to=${iso(5)}`,
        expected: ['a', 'c'],
      },
      { grpc: { job: 'nightly-etl', actor: 'bob' }, http: 'job=nightly-etl&actor=bob', expected: ['b'] },
      { grpc: { keyId: 'key-amber', from: iso(2) }, http: `key=key-amber&from=${iso(2)}`, expected: ['c'] },
      {
        grpc: { job: 'nightly-etl', outcome: 'revoked' },
        http: 'job=nightly-etl&outcome=revoked',
        expected: [],
      },
    ];

    beforeAll(async () => {
      await appendAll(Object.values(events));
    });

    it.each(cases)(
      'when filtered by $http, then gRPC and HTTP both return exactly the matching events',
      async (c) => {
        const viaGrpc = await invoke<QueryResponse>('queryEntries', { ...c.grpc, ascending: true });
        expect(viaGrpc.entries.map((e) => nameOf.get(e.eventId) ?? e.eventId)).toEqual(c.expected);
        const viaHttp = await httpGet<{ data: Array<{ eventId: string }> }>(
          `/api/v1/audit/entries?order=asc&${c.http.replaceAll('+', '%2B')}`,
        );
        expect(viaHttp.data.map((e) => nameOf.get(e.eventId) ?? e.eventId)).toEqual(c.expected);
      },
    );

    it('when entries come back, then their filter columns are the values filtered on', async () => {
      const { entries } = await invoke<QueryResponse>('queryEntries', { to: iso(5), ascending: true });
      expect(entries.map((e) => [nameOf.get(e.eventId), e.actor, e.keyId, e.job, e.outcome])).toEqual([
        ['a', 'alice', 'key-amber', 'nightly-etl', 'completed'],
        ['b', 'bob', 'key-basalt', 'nightly-etl', 'rate_limited'],
        ['c', 'bob', 'key-amber', '', 'completed'],
        ['d', 'carol', 'key-coral', '', 'revoked'],
      ]);
    });
  });
});

import { InProcessBus } from '@flowloom/bus';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { openCheckpoint, parseVerifierKey, verifyConsistency } from '@flowloom/ledger';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditGrpcClient } from '../src/grpc/server.js';
import { type StandaloneAudit, startAudit } from '../src/main.js';
import type { TestDatabase } from './databases.js';
import { FAILED, openTestDatabase, requestEvent, standaloneAuditConfig, tempDir } from './support.js';

// The standalone audit service's gRPC API through a real @grpc/grpc-js client, on PostgreSQL:
// consistency proofs that the ledger library's verifier accepts, full-text queries, and bad input
// answered INVALID_ARGUMENT.

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
interface Entry {
  index: number;
  eventId: string;
  type: string;
  project: string;
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
});

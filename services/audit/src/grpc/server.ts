import { uuidv7 } from '@flowloom/contracts';
import { AppError, grpcStatusOf, isAppError } from '@flowloom/errors';
import { credentialHeaders, GrpcHealth, listen, loadService, peerAddress } from '@flowloom/grpc';
import * as grpc from '@grpc/grpc-js';
import type { AuditLedger } from '../app/ledger.js';
import { proveConsistency, proveInclusion } from '../app/proofs.js';
import type { AdminAuthorizer } from '../ports/admin.js';
import type { CheckpointRecord, EntryView } from '../ports/ledger-store.js';
import type { AuditLogger } from '../ports/logger.js';

/** The Audit service's client constructor (for tests and other services). */
export function auditGrpcClient(): grpc.ServiceClientConstructor {
  return loadService('flowloom/audit/v1/audit.proto', ['flowloom', 'audit', 'v1', 'Audit']);
}

interface InclusionRequest {
  entry?: 'index' | 'eventId';
  index: number;
  eventId: string;
  treeSize: number;
}
interface ConsistencyRequest {
  fromSize: number;
  toSize: number;
}
interface QueryRequest {
  from: string;
  to: string;
  type: string;
  actor: string;
  keyId: string;
  project: string;
  job: string;
  outcome: string;
  text: string;
  limit: number;
  cursor: string;
  ascending: boolean;
}

const checkpointMessage = (c: CheckpointRecord) => ({
  treeSize: c.treeSize,
  rootHash: Buffer.from(c.rootHash),
  keyId: c.keyId,
  note: c.note,
  issuedAt: c.issuedAt.toISOString(),
});

const entryMessage = (e: EntryView) => ({
  index: e.index,
  eventId: e.eventId,
  time: e.time.toISOString(),
  type: e.type,
  source: e.source,
  subject: e.subject ?? '',
  actor: e.actor ?? '',
  keyId: e.keyId ?? '',
  project: e.project ?? '',
  job: e.job ?? '',
  outcome: e.outcome ?? '',
  pruned: e.pruned,
  leafHash: Buffer.from(e.leafHash),
  entry: e.entry ?? '',
});

function optionalText(value: string, name: string, max = 200): string | undefined {
  if (value === '') return undefined;
  if (value.length > max)
    throw new AppError('invalid_request', `${name} is longer than ${max} characters`, { param: name });
  return value;
}

function optionalTime(value: string, name: string): Date | undefined {
  if (value === '') return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms))
    throw new AppError('invalid_request', `${name} must be an RFC 3339 time`, { param: name });
  return new Date(ms);
}

export interface AuditGrpcServer {
  readonly port: number;
  close(): Promise<void>;
}

/** `flowloom.audit.v1.Audit` and `grpc.health.v1.Health` on a server of their own. */
export async function startAuditGrpcServer(
  ledger: AuditLedger,
  authorizeAdmin: AdminAuthorizer,
  host: string,
  port: number,
  logger: AuditLogger,
): Promise<AuditGrpcServer> {
  const server = new grpc.Server();
  const Audit = auditGrpcClient();

  // The caller's address goes with the credentials, so a refused key is recorded with it, as on HTTP.
  const admin = async (call: { metadata: grpc.Metadata; getPeer(): string }): Promise<void> => {
    const sourceIp = peerAddress(call);
    await authorizeAdmin(credentialHeaders(call.metadata), {
      requestId: uuidv7(),
      ...(sourceIp ? { sourceIp } : {}),
    });
  };

  /** Runs a unary handler, mapping errors to gRPC status codes without leaking internals. */
  const unary =
    <Req, Res>(needsAdmin: boolean, handle: (request: Req) => Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
      void (async () => {
        try {
          if (needsAdmin) await admin(call);
          callback(null, await handle(call.request));
        } catch (error) {
          const known = isAppError(error);
          if (!known) logger.error({ err: error }, 'audit gRPC: unhandled error');
          callback(
            { code: grpcStatusOf(error), details: known ? error.message : 'Internal error. Retry later.' },
            null,
          );
        }
      })();
    };

  server.addService(Audit.service, {
    getLatestCheckpoint: unary(false, async () =>
      checkpointMessage((await ledger.ledgerStore.latestCheckpoint()) ?? (await ledger.checkpoint())),
    ),
    issueCheckpoint: unary(true, async () => checkpointMessage(await ledger.checkpoint())),
    getPublicKeys: unary(false, async () => ({
      origin: ledger.origin,
      verifierKeys: await ledger.verifierKeys(),
    })),
    getInclusionProof: unary(true, async (request: InclusionRequest) => {
      const ref =
        request.entry === 'eventId'
          ? { eventId: optionalText(request.eventId, 'event_id') }
          : request.entry === 'index'
            ? { index: request.index }
            : undefined;
      if (!ref) throw new AppError('invalid_request', 'set index or event_id');
      const proof = await proveInclusion(ledger, ref, request.treeSize > 0 ? request.treeSize : undefined);
      return {
        index: proof.index,
        eventId: proof.eventId ?? '',
        treeSize: proof.treeSize,
        leafHash: Buffer.from(proof.leafHash),
        rootHash: Buffer.from(proof.rootHash),
        proof: proof.proof.map((p) => Buffer.from(p)),
        checkpoint: proof.checkpoint?.note ?? '',
      };
    }),
    getConsistencyProof: unary(true, async (request: ConsistencyRequest) => {
      const result = await proveConsistency(
        ledger,
        request.fromSize,
        request.toSize > 0 ? request.toSize : undefined,
      );
      return {
        fromSize: result.size1,
        toSize: result.size2,
        fromRoot: Buffer.from(result.root1),
        toRoot: Buffer.from(result.root2),
        proof: result.proof.map((p) => Buffer.from(p)),
        checkpoint: result.checkpoint?.note ?? '',
      };
    }),
    queryEntries: unary(true, async (request: QueryRequest) => {
      const limit = request.limit === 0 ? 100 : request.limit;
      if (limit > 1000) throw new AppError('invalid_request', 'limit must be 1–1000', { param: 'limit' });
      const type = optionalText(request.type, 'type');
      if (type !== undefined && !/^[a-z0-9_.-]+\*?$/.test(type)) {
        throw new AppError('invalid_request', 'type must be an event type or a prefix ending in *', {
          param: 'type',
        });
      }
      let cursor: number | undefined;
      if (request.cursor !== '') {
        if (!/^\d{1,15}$/.test(request.cursor))
          throw new AppError('invalid_request', 'cursor is not valid', { param: 'cursor' });
        cursor = Number(request.cursor);
      }
      const { entries: rows, notSearched } = await ledger.search({
        from: optionalTime(request.from, 'from'),
        to: optionalTime(request.to, 'to'),
        type,
        actor: optionalText(request.actor, 'actor'),
        keyId: optionalText(request.keyId, 'key_id'),
        project: optionalText(request.project, 'project'),
        job: optionalText(request.job, 'job'),
        outcome: optionalText(request.outcome, 'outcome'),
        text: optionalText(request.text, 'text', 500),
        limit,
        cursor,
        order: request.ascending ? 'asc' : 'desc',
      });
      const last = rows[rows.length - 1];
      return {
        entries: rows.map(entryMessage),
        nextCursor: rows.length === limit && last ? String(last.index) : '',
        notSearched,
      };
    }),
  });

  // Serving while the ledger's database answers (the HTTP /readyz check).
  const health = new GrpcHealth({
    services: {
      'flowloom.audit.v1.Audit': async () => {
        await ledger.ledgerStore.treeSize();
        return true;
      },
    },
  });
  health.addTo(server);

  const bound = await listen(server, host, port);
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        health.shutdown();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 5_000);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

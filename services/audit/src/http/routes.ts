import { auditExportCreatedSchema, auditVerificationCompletedSchema } from '@flowloom/contracts';
import { AppError, parseInput as parse } from '@flowloom/errors';
import { toBase64, toHex } from '@flowloom/ledger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuditLedger } from '../app/ledger.js';
import { proveConsistency, proveInclusion } from '../app/proofs.js';
import { generateReport, type ReportSettings } from '../app/report.js';
import type { RetentionRule } from '../domain/retention.js';
import { STANDARD_IDS } from '../domain/standards.js';
import type { AdminAuthorizer } from '../ports/admin.js';
import type { CheckpointRecord, EntryFilter, EntryView } from '../ports/ledger-store.js';
import { auditOpenApi } from './openapi.js';

/** Mounts the audit API on a fastify server (the gateway's in `flowloom up`, its own standalone). */
export type AuditHttpPlugin = (app: FastifyInstance, authorizeAdmin: AdminAuthorizer) => Promise<void>;

export interface AuditHttpDeps {
  ledger: AuditLedger;
  report: ReportSettings;
  retention: readonly RetentionRule[];
}

const PAGE_LIMIT = 10_000;

const index = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const text = z.string().min(1).max(200);
const typeFilter = z
  .string()
  .max(200)
  .regex(/^[a-z0-9_.-]+\*?$/, 'an event type, or a prefix ending in *');

const filterSchema = z.strictObject({
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  type: typeFilter.optional(),
  actor: text.optional(),
  key: text.optional(),
  project: text.optional(),
  job: text.optional(),
  outcome: text.optional(),
  q: z.string().min(1).max(500).optional(),
});

const querySchema = filterSchema.extend({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: index.optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
});

const pageSchema = filterSchema.extend({ start: index, end: index });
const tilesSchema = z.strictObject({ start: index, end: index });

function toFilter(q: z.infer<typeof filterSchema>): EntryFilter {
  return {
    from: q.from ? new Date(q.from) : undefined,
    to: q.to ? new Date(q.to) : undefined,
    type: q.type,
    actor: q.actor,
    keyId: q.key,
    project: q.project,
    job: q.job,
    outcome: q.outcome,
    text: q.q,
  };
}

export function checkpointJson(record: CheckpointRecord) {
  return {
    id: record.id,
    treeSize: record.treeSize,
    rootHash: toBase64(record.rootHash),
    keyId: record.keyId,
    issuedAt: record.issuedAt.toISOString(),
    checkpoint: record.note,
  };
}

export function entryJson(view: EntryView) {
  let event: unknown = null;
  if (view.entry !== null) {
    try {
      event = JSON.parse(view.entry);
    } catch {
      event = null;
    }
  }
  return {
    index: view.index,
    eventId: view.eventId,
    time: view.time.toISOString(),
    type: view.type,
    source: view.source,
    subject: view.subject,
    actor: view.actor,
    keyId: view.keyId,
    project: view.project,
    job: view.job,
    outcome: view.outcome,
    pruned: view.pruned,
    leafHash: toHex(view.leafHash),
    event,
  };
}

/** The audit API routes under /api/v1/audit. */
export function auditRoutes(deps: AuditHttpDeps): AuditHttpPlugin {
  const { ledger } = deps;
  return async (app, authorizeAdmin) => {
    const admin = (request: FastifyRequest) =>
      authorizeAdmin(request.headers, { requestId: String(request.id), sourceIp: request.ip });

    // Public: what anyone needs to check a checkpoint or a bundle.
    app.get('/api/v1/audit/public-key', async (request, reply) => {
      const keys = await ledger.verifierKeys();
      if ((request.headers.accept ?? '').includes('application/json')) {
        return reply.send({ origin: ledger.origin, keyId: ledger.keyId, keys });
      }
      return reply.type('text/plain; charset=utf-8').send(`${keys.join('\n')}\n`);
    });

    app.get('/api/v1/audit/checkpoints/latest', async (_request, reply) => {
      const latest = (await ledger.ledgerStore.latestCheckpoint()) ?? (await ledger.checkpoint());
      return reply.send(checkpointJson(latest));
    });

    app.get('/api/v1/audit/openapi.json', async (_request, reply) => reply.send(auditOpenApi));

    // Admin.
    app.get('/api/v1/audit/info', async (request, reply) => {
      await admin(request);
      const latest = await ledger.ledgerStore.latestCheckpoint();
      return reply.send({
        origin: ledger.origin,
        treeSize: await ledger.ledgerStore.treeSize(),
        keyId: ledger.keyId,
        latestCheckpoint: latest ? checkpointJson(latest) : null,
        externalBacklog: ledger.externalBacklog(),
      });
    });

    app.post('/api/v1/audit/checkpoints', async (request, reply) => {
      await admin(request);
      return reply.code(201).send(checkpointJson(await ledger.checkpoint()));
    });

    app.get('/api/v1/audit/checkpoints', async (request, reply) => {
      await admin(request);
      const q = parse(
        z.strictObject({
          after: index.default(0),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        request.query,
      );
      const records = await ledger.ledgerStore.checkpoints(q.after, q.limit);
      return reply.send({
        data: records.map(checkpointJson),
        nextAfter: records.length === q.limit ? records[records.length - 1]?.id : null,
      });
    });

    app.get('/api/v1/audit/proofs/inclusion', async (request, reply) => {
      await admin(request);
      const q = parse(
        z
          .strictObject({ index: index.optional(), eventId: text.optional(), treeSize: index.optional() })
          .refine((v) => (v.index === undefined) !== (v.eventId === undefined), {
            message: 'give exactly one of index and eventId',
          }),
        request.query,
      );
      const proof = await proveInclusion(ledger, { index: q.index, eventId: q.eventId }, q.treeSize);
      return reply.send({
        index: proof.index,
        eventId: proof.eventId,
        treeSize: proof.treeSize,
        leafHash: toBase64(proof.leafHash),
        rootHash: toBase64(proof.rootHash),
        proof: proof.proof.map(toBase64),
        checkpoint: proof.checkpoint?.note ?? null,
      });
    });

    app.post('/api/v1/audit/proofs/inclusion', async (request, reply) => {
      await admin(request);
      const body = parse(
        z.strictObject({ indexes: z.array(index).min(1).max(1000), treeSize: index }),
        request.body,
      );
      const proofs = await ledger.inclusionProofs(body.indexes, body.treeSize);
      return reply.send({
        treeSize: body.treeSize,
        proofs: body.indexes.map((i, n) => ({ index: i, proof: (proofs[n] ?? []).map(toBase64) })),
      });
    });

    app.get('/api/v1/audit/proofs/consistency', async (request, reply) => {
      await admin(request);
      const q = parse(z.strictObject({ from: index, to: index.optional() }), request.query);
      const result = await proveConsistency(ledger, q.from, q.to);
      return reply.send({
        from: result.size1,
        to: result.size2,
        fromRoot: toBase64(result.root1),
        toRoot: toBase64(result.root2),
        proof: result.proof.map(toBase64),
        checkpoint: result.checkpoint?.note ?? null,
      });
    });

    app.get('/api/v1/audit/entries', async (request, reply) => {
      await admin(request);
      const q = parse(querySchema, request.query);
      const { entries: rows, notSearched } = await ledger.search({
        ...toFilter(q),
        limit: q.limit,
        cursor: q.cursor,
        order: q.order,
      });
      const last = rows[rows.length - 1];
      return reply.send({
        data: rows.map(entryJson),
        nextCursor: rows.length === q.limit && last ? String(last.index) : null,
        notSearched,
      });
    });

    app.get('/api/v1/audit/entries/:index', async (request, reply) => {
      await admin(request);
      const p = parse(z.strictObject({ index }), request.params);
      const view = await ledger.entry(p.index);
      if (!view) throw new AppError('not_found', `entry ${p.index} is not in the audit ledger`);
      return reply.send(entryJson(view));
    });

    app.get('/api/v1/audit/events/:eventId', async (request, reply) => {
      await admin(request);
      const p = parse(z.strictObject({ eventId: text }), request.params);
      const at = await ledger.ledgerStore.indexOfEvent(p.eventId);
      const view = at === undefined ? undefined : await ledger.entry(at);
      if (!view) throw new AppError('not_found', `event ${p.eventId} is not in the audit ledger`);
      return reply.send(entryJson(view));
    });

    app.get('/api/v1/audit/log/entries', async (request, reply) => {
      await admin(request);
      const q = parse(pageSchema, request.query);
      if (q.end < q.start || q.end - q.start > PAGE_LIMIT) {
        throw new AppError('invalid_request', `end must be between start and start + ${PAGE_LIMIT}`, {
          param: 'end',
        });
      }
      const page = await ledger.ledgerStore.bundlePage(q.start, q.end, toFilter(q));
      const contiguous = page.indexes.every((value, i) => value === q.start + i);
      return reply.send({
        start: page.start,
        lines: page.lines,
        ...(contiguous ? {} : { indexes: page.indexes }),
        leafHashes: toBase64(page.leafHashes),
        matched: page.matched,
        pruned: page.pruned,
      });
    });

    app.get('/api/v1/audit/log/tiles', async (request, reply) => {
      await admin(request);
      const q = parse(tilesSchema, request.query);
      if (q.end < q.start || q.end - q.start > PAGE_LIMIT) {
        throw new AppError('invalid_request', `end must be between start and start + ${PAGE_LIMIT}`, {
          param: 'end',
        });
      }
      const tiles = await ledger.ledgerStore.tiles(q.start, q.end);
      return reply.send({
        tiles: tiles.map((t) => ({ startSize: t.startSize, endSize: t.endSize, hashes: toBase64(t.hashes) })),
      });
    });

    app.get('/api/v1/audit/stats', async (request, reply) => {
      await admin(request);
      return reply.send(await ledger.ledgerStore.stats());
    });

    app.post('/api/v1/audit/activity', async (request, reply) => {
      const { actor } = await admin(request);
      // The payloads of the contract, without the actor (the caller is the actor).
      const body = parse(
        z.discriminatedUnion('kind', [
          z.strictObject({
            kind: z.literal('export'),
            ...auditExportCreatedSchema.omit({ actor: true }).shape,
            filter: auditExportCreatedSchema.shape.filter.default({}),
          }),
          z.strictObject({
            kind: z.literal('verification'),
            ...auditVerificationCompletedSchema.omit({ actor: true, outcome: true }).shape,
          }),
        ]),
        request.body,
      );
      await ledger.record(body, actor);
      return reply.code(201).send({ recorded: body.kind, actor });
    });

    app.post('/api/v1/audit/keys/rotate', async (request, reply) => {
      const { actor } = await admin(request);
      return reply.send(await ledger.rotateKey(actor));
    });

    app.post('/api/v1/audit/retention/run', async (request, reply) => {
      const { actor } = await admin(request);
      return reply.send({ pruned: await ledger.applyRetention(deps.retention, actor) });
    });

    app.get('/api/v1/audit/reports/:standard', async (request, reply: FastifyReply) => {
      const { actor } = await admin(request);
      const p = parse(z.strictObject({ standard: z.enum(STANDARD_IDS) }), request.params);
      return reply.send(await generateReport(ledger, p.standard, deps.report, actor));
    });
  };
}

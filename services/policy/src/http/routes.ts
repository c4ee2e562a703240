import { AppError } from '@flowloom/errors';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { DecisionsService } from '../app/decisions.js';
import type { BundleDistributor } from '../app/distribution.js';
import type { PolicyAdmin } from '../app/policies.js';
import type { ReplayService } from '../app/replay.js';
import type { Actor, Deployment, PolicyVersion, Promotion } from '../domain/model.js';
import { parseSince } from '../domain/rollout.js';

/** Authenticates an admin key (the gateway's authorizer when composed in one process). */
export type AdminAuthorizer = (
  headers: Record<string, string | string[] | undefined>,
) => Promise<{ actor: string; keyId: string; owner?: string }>;

export interface PolicyHttpDeps {
  admin: PolicyAdmin;
  distributor: BundleDistributor;
  decisions: DecisionsService;
  replay: ReplayService;
}

const sourceBody = {
  source: z
    .string()
    .max(1024 * 1024)
    .optional(),
  document: z.unknown().optional(),
  filename: z.string().max(500).optional(),
  format: z.enum(['yaml', 'json']).optional(),
};
const validateBody = z.strictObject(sourceBody);
const pushBody = z.strictObject({ ...sourceBody, message: z.string().max(2000).optional() });
const nameParams = z.object({ name: z.string().min(1).max(200) });
const versionParams = z.object({ name: z.string().min(1).max(200), version: z.string().min(7).max(64) });
const idParams = z.object({ id: z.string().min(1).max(100) });
const diffQuery = z.object({ from: z.string().optional(), to: z.string().optional() });
const promoteBody = z.strictObject({
  version: z.string().min(7).max(64),
  mode: z.enum(['shadow', 'canary', 'enforce']),
  percent: z.number().gt(0).lt(100).optional(),
  by: z.enum(['job', 'key']).optional(),
});
const rollbackBody = z.strictObject({ to: z.string().min(7).max(64).optional() });
const replayBody = z.strictObject({
  version: z.string().min(7).max(64),
  baseline: z.string().min(7).max(64).optional(),
  since: z.string().max(40).optional(),
  limit: z.number().int().positive().max(100_000).optional(),
  examples: z.number().int().min(0).max(20).optional(),
});
const jobParams = z.object({
  job: z.string().regex(/^[\x21-\x7e]{1,200}$/, 'a job id is 1-200 printable ASCII characters'),
});
const interventionsQuery = z.object({
  after: z.string().max(100).optional(),
  limit: z.coerce.number().int().positive().max(1000).default(100),
});
const decisionsQuery = z.object({
  job: z.string().max(200).optional(),
  key: z.string().max(100).optional(),
  policy: z.string().max(200).optional(),
  verdict: z.string().max(40).optional(),
  since: z.string().max(40).optional(),
  limit: z.coerce.number().int().positive().max(1000).default(100),
});

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue?.path.map(String).join('.') || undefined;
  throw new AppError(
    'invalid_request',
    `${param ? `${param}: ` : ''}${issue?.message ?? 'invalid'}`,
    param ? { param } : {},
  );
}

function versionView(v: PolicyVersion, full = false) {
  return {
    name: v.name,
    version: v.version,
    seq: v.seq,
    author: v.author,
    message: v.message,
    previous: v.previous,
    createdAt: v.createdAt.toISOString(),
    rules: v.document.rules.length,
    ...(full ? { format: v.format, source: v.source, document: v.document } : {}),
  };
}

function deploymentView(d: Deployment | undefined) {
  if (!d) return null;
  return {
    revision: d.revision,
    stable: d.stable,
    candidate: d.candidate
      ? {
          version: d.candidate,
          mode: d.candidateMode,
          ...(d.candidateMode === 'canary' ? { percent: d.percent, by: d.by } : {}),
        }
      : null,
    reason: d.reason,
    actor: d.actor,
    promotionId: d.promotionId,
    at: d.createdAt.toISOString(),
  };
}

function promotionView(p: Promotion) {
  return {
    id: p.id,
    name: p.name,
    version: p.version,
    mode: p.mode,
    ...(p.percent !== null ? { percent: p.percent } : {}),
    ...(p.by !== null ? { by: p.by } : {}),
    author: p.author,
    requestedBy: p.requestedBy,
    requestedAt: p.requestedAt.toISOString(),
    status: p.status,
    approvedBy: p.approvedBy,
    approvedAt: p.approvedAt?.toISOString() ?? null,
    revision: p.revision,
  };
}

/**
 * The policy service's admin API (`/api/v1/policies`, `/api/v1/promotions`, `/api/v1/decisions`,
 * `/api/v1/policy-bundle`), mounted on the gateway's HTTP server when both run in one process.
 */
export function policyRoutes(deps: PolicyHttpDeps) {
  return async (app: FastifyInstance, authorizeAdmin: AdminAuthorizer): Promise<void> => {
    const who = async (
      headers: Record<string, string | string[] | undefined>,
    ): Promise<Actor & { keyId: string }> => {
      const admin = await authorizeAdmin(headers);
      return { id: admin.owner ?? admin.actor, label: admin.actor, keyId: admin.keyId };
    };

    app.post('/api/v1/policies/validate', async (request, reply) => {
      await who(request.headers);
      return reply.send(deps.admin.validate(parse(validateBody, request.body)));
    });

    app.post('/api/v1/policies', async (request, reply) => {
      const actor = await who(request.headers);
      const pushed = await deps.admin.push(parse(pushBody, request.body), actor);
      return reply.code(pushed.created ? 201 : 200).send({
        created: pushed.created,
        ...versionView(pushed.version),
        ...(pushed.diff
          ? {
              diff: {
                added: pushed.diff.added.map((r) => r.id),
                removed: pushed.diff.removed.map((r) => r.id),
                changed: pushed.diff.changed.map((r) => r.id),
              },
            }
          : {}),
      });
    });

    app.get('/api/v1/policies', async (request, reply) => {
      await who(request.headers);
      const all = await deps.admin.policies();
      return reply.send({
        data: all.map((p) => ({
          name: p.name,
          latest: p.latest ? versionView(p.latest) : null,
          deployment: deploymentView(p.deployment),
        })),
      });
    });

    app.post('/api/v1/policies/diff', async (request, reply) => {
      await who(request.headers);
      return reply.send(await deps.admin.diffDocument(parse(validateBody, request.body)));
    });

    app.get('/api/v1/policies/:name', async (request, reply) => {
      await who(request.headers);
      const { name } = parse(nameParams, request.params);
      const p = await deps.admin.policy(name);
      return reply.send({
        name: p.name,
        deployment: deploymentView(p.deployment),
        versions: p.versions.map((v) => versionView(v)),
        history: p.history.map(deploymentView),
        promotions: p.promotions.map(promotionView),
      });
    });

    app.get('/api/v1/policies/:name/versions/:version', async (request, reply) => {
      await who(request.headers);
      const { name, version } = parse(versionParams, request.params);
      return reply.send(versionView(await deps.admin.version(name, version), true));
    });

    app.get('/api/v1/policies/:name/diff', async (request, reply) => {
      await who(request.headers);
      const { name } = parse(nameParams, request.params);
      const { from, to } = parse(diffQuery, request.query);
      return reply.send(await deps.admin.diff(name, from, to));
    });

    app.post('/api/v1/policies/:name/promotions', async (request, reply) => {
      const actor = await who(request.headers);
      const { name } = parse(nameParams, request.params);
      const body = parse(promoteBody, request.body);
      const result = await deps.admin.promote(
        name,
        {
          version: body.version,
          mode: body.mode,
          ...(body.percent !== undefined ? { percent: body.percent } : {}),
          ...(body.by !== undefined ? { by: body.by } : {}),
        },
        actor,
      );
      if (result.status === 'pending') {
        return reply.code(202).send({
          status: 'pending',
          promotion: promotionView(result.promotion),
          next: `Another person approves it: POST /api/v1/promotions/${result.promotion.id}/approve (flowloom policy approve ${result.promotion.id}).`,
        });
      }
      return reply.code(201).send({ status: 'applied', deployment: deploymentView(result.deployment) });
    });

    app.get('/api/v1/promotions/:id', async (request, reply) => {
      await who(request.headers);
      const { id } = parse(idParams, request.params);
      const policyName = await findPromotion(deps, id);
      return reply.send(promotionView(policyName));
    });

    app.post('/api/v1/promotions/:id/approve', async (request, reply) => {
      const actor = await who(request.headers);
      const { id } = parse(idParams, request.params);
      const { promotion, deployment } = await deps.admin.approve(id, actor);
      return reply.send({ promotion: promotionView(promotion), deployment: deploymentView(deployment) });
    });

    app.post('/api/v1/policies/:name/rollback', async (request, reply) => {
      const actor = await who(request.headers);
      const { name } = parse(nameParams, request.params);
      const { to } = parse(rollbackBody, request.body);
      return reply.send({ deployment: deploymentView(await deps.admin.rollback(name, actor, to)) });
    });

    const replay = (name: string | undefined, body: z.output<typeof replayBody>) =>
      deps.replay.replay({
        ...(name !== undefined ? { name } : {}),
        version: body.version,
        ...(body.baseline ? { baseline: body.baseline } : {}),
        ...(body.since ? { since: body.since } : {}),
        ...(body.limit ? { limit: body.limit } : {}),
        ...(body.examples !== undefined ? { examples: body.examples } : {}),
      });

    app.post('/api/v1/policies/:name/replay', async (request, reply) => {
      await who(request.headers);
      const { name } = parse(nameParams, request.params);
      return reply.send(await replay(name, parse(replayBody, request.body)));
    });

    // The candidate version names its policy, so replay needs no name (`policy replay --version V`).
    app.post('/api/v1/replay', async (request, reply) => {
      await who(request.headers);
      return reply.send(await replay(undefined, parse(replayBody, request.body)));
    });

    app.get('/api/v1/policy-bundle', async (request, reply) => {
      await who(request.headers);
      return reply.send(deps.distributor.current());
    });

    app.get('/api/v1/decisions/:id', async (request, reply) => {
      await who(request.headers);
      const { id } = parse(idParams, request.params);
      return reply.send(await deps.decisions.get(id));
    });

    app.get('/api/v1/jobs/:job/interventions', async (request, reply) => {
      await who(request.headers);
      const { job } = parse(jobParams, request.params);
      const { after, limit } = parse(interventionsQuery, request.query);
      return reply.send(await deps.decisions.interventions(job, after, limit));
    });

    app.get('/api/v1/decisions', async (request, reply) => {
      await who(request.headers);
      const q = parse(decisionsQuery, request.query);
      const records = await deps.decisions.list({
        limit: q.limit,
        ...(q.job ? { job: q.job } : {}),
        ...(q.key ? { keyId: q.key } : {}),
        ...(q.policy ? { policy: q.policy } : {}),
        ...(q.verdict ? { verdict: q.verdict } : {}),
        ...(q.since ? { since: parseSince(q.since, new Date()) } : {}),
      });
      return reply.send({ data: records.map(({ input: _input, ...rest }) => rest) });
    });
  };
}

async function findPromotion(deps: PolicyHttpDeps, id: string): Promise<Promotion> {
  const promotion = await deps.admin.promotion(id);
  if (!promotion) throw new AppError('not_found', `No promotion ${id}.`, { param: 'id' });
  return promotion;
}

import { parseInput as parse } from '@flowloom/errors';
import type { FastifyInstance } from 'fastify';
import {
  type AuthorizedAdmin,
  actorOf,
  decisionFilterOf,
  decisionsQuery,
  deploymentView,
  diffQuery,
  findPromotion,
  idParams,
  interventionsQuery,
  jobParams,
  nameParams,
  promoteBody,
  promotionView,
  pushBody,
  replayBody,
  replayRequestOf,
  rollbackBody,
  ruleChanges,
  validateBody,
  versionParams,
  versionView,
  withoutInput,
} from '../app/admin-api.js';
import type { DecisionsService } from '../app/decisions.js';
import type { BundleDistributor } from '../app/distribution.js';
import type { PolicyAdmin } from '../app/policies.js';
import type { ReplayService } from '../app/replay.js';
import type { Actor } from '../domain/model.js';
import { type PolicyOutboxDeps, registerPolicyOutboxRoutes } from './outbox-routes.js';

/**
 * Authenticates an admin key (the gateway's authorizer when composed in one process); `request` names
 * the call in the record of a refused key.
 */
export type AdminAuthorizer = (
  headers: Record<string, string | string[] | undefined>,
  request?: { requestId?: string; sourceIp?: string },
) => Promise<AuthorizedAdmin>;

export interface PolicyHttpDeps {
  admin: PolicyAdmin;
  distributor: BundleDistributor;
  decisions: DecisionsService;
  replay: ReplayService;
  outbox: PolicyOutboxDeps;
}

/**
 * The policy service's admin API (`/api/v1/policies`, `/api/v1/promotions`, `/api/v1/decisions`,
 * `/api/v1/policy-bundle`, `/api/v1/policy-outbox`), mounted on the gateway's HTTP server when both
 * run in one process.
 */
export function policyRoutes(deps: PolicyHttpDeps) {
  return async (app: FastifyInstance, authorizeAdmin: AdminAuthorizer): Promise<void> => {
    const who = async (headers: Record<string, string | string[] | undefined>): Promise<Actor> => {
      return actorOf(await authorizeAdmin(headers));
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
        ...(pushed.diff ? { diff: ruleChanges(pushed.diff) } : {}),
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
      return reply.send(promotionView(await findPromotion(deps.admin, id)));
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

    const replay = (name: string | undefined, body: unknown) =>
      deps.replay.replay(replayRequestOf(name, parse(replayBody, body)));

    app.post('/api/v1/policies/:name/replay', async (request, reply) => {
      await who(request.headers);
      const { name } = parse(nameParams, request.params);
      return reply.send(await replay(name, request.body));
    });

    // The candidate version names its policy, so replay needs no name (`policy replay --version V`).
    app.post('/api/v1/replay', async (request, reply) => {
      await who(request.headers);
      return reply.send(await replay(undefined, request.body));
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
      const records = await deps.decisions.list(decisionFilterOf(parse(decisionsQuery, request.query)));
      return reply.send({ data: records.map(withoutInput) });
    });

    registerPolicyOutboxRoutes(app, (headers) => authorizeAdmin(headers), deps.outbox);
  };
}

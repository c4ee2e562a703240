import { parseInput as parse } from '@flowloom/errors';
import type { FastifyInstance } from 'fastify';
import {
  assertNotSelf,
  createKeyBody,
  createKeyInput,
  keyIdParams,
  keyView,
  listKeysFilter,
  listKeysQuery,
  rotateKeyBody,
} from '../../app/keys-requests.js';
import { adminFirst, keyActorOf } from '../admin-auth.js';
import type { HttpDeps } from '../deps.js';
import { callerOf } from '../request-context.js';

/** /api/v1/keys — create, list, show, revoke, rotate and resume (after a suspension) virtual keys. */
export function registerAdminKeys(app: FastifyInstance, deps: HttpDeps): void {
  app.post(
    '/api/v1/keys',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const ctx = callerOf(request);
      const input = createKeyInput(parse(createKeyBody, request.body), ctx.key.owner);
      const issued = await deps.keys.create(input, keyActorOf(ctx));
      return reply.code(201).send({ ...keyView(issued.key), key: issued.secret });
    },
  );

  app.get(
    '/api/v1/keys',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const keys = await deps.keys.list(listKeysFilter(parse(listKeysQuery, request.query)));
      return reply.send({ data: keys.map(keyView) });
    },
  );

  app.get(
    '/api/v1/keys/:id',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const { id } = parse(keyIdParams, request.params);
      return reply.send(keyView(await deps.keys.get(id)));
    },
  );

  app.post(
    '/api/v1/keys/:id/revoke',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const ctx = callerOf(request);
      const { id } = parse(keyIdParams, request.params);
      assertNotSelf(id, ctx.key.id);
      return reply.send(keyView(await deps.keys.revoke(id, keyActorOf(ctx))));
    },
  );

  app.post(
    '/api/v1/keys/:id/resume',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const ctx = callerOf(request);
      const { id } = parse(keyIdParams, request.params);
      return reply.send(keyView(await deps.keys.resume(id, keyActorOf(ctx))));
    },
  );

  app.post(
    '/api/v1/keys/:id/rotate',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const ctx = callerOf(request);
      const { id } = parse(keyIdParams, request.params);
      const body = parse(rotateKeyBody, request.body);
      const issued = await deps.keys.rotate(id, body.gracePeriodSeconds, keyActorOf(ctx));
      return reply.code(201).send({ ...keyView(issued.key), key: issued.secret });
    },
  );
}

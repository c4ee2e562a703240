import { AppError } from '@flowloom/errors';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { KeyRecord } from '../../domain/keys.js';
import { actorOf, adminContext } from '../admin-auth.js';
import type { HttpDeps } from '../deps.js';

const createBody = z.strictObject({
  name: z.string().min(1).max(200),
  owner: z.string().min(1).max(200).optional(),
  project: z.string().min(1).max(200).optional(),
  team: z.string().min(1).max(200).optional(),
  job: z
    .string()
    .regex(/^[\x21-\x7e]{1,200}$/, 'job must be 1-200 printable ASCII characters without spaces')
    .optional(),
  role: z.enum(['admin', 'member']).optional(),
  models: z.array(z.string().min(1).max(200)).max(200).optional(),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  expiresInDays: z.number().positive().max(3650).optional(),
});

const rotateBody = z.strictObject({
  gracePeriodSeconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 86400)
    .default(3600),
});
const idParams = z.object({ id: z.uuid('id must be a key id (a UUID)') });
const listQuery = z.object({
  project: z.string().optional(),
  includeRevoked: z.enum(['true', 'false']).optional(),
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

/** The public view of a key: never its secret or hash. */
export function keyView(key: KeyRecord) {
  return {
    id: key.id,
    name: key.name,
    owner: key.owner,
    project: key.project,
    team: key.team,
    job: key.job,
    role: key.role,
    models: key.models,
    hint: key.hint,
    createdAt: key.createdAt.toISOString(),
    expiresAt: key.expiresAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
    rotatedFrom: key.rotatedFrom,
  };
}

/** /api/v1/keys — create, list, show, revoke and rotate virtual keys. */
export function registerAdminKeys(app: FastifyInstance, deps: HttpDeps): void {
  app.post('/api/v1/keys', { config: { format: 'admin' } }, async (request, reply) => {
    const ctx = await adminContext(request, reply, deps);
    const body = parse(createBody, request.body);
    if (body.expiresAt && body.expiresInDays) {
      throw new AppError('invalid_request', 'Give expiresAt or expiresInDays, not both.', {
        param: 'expiresAt',
      });
    }
    const expiresAt = body.expiresAt
      ? new Date(body.expiresAt)
      : body.expiresInDays
        ? new Date(Date.now() + body.expiresInDays * 86_400_000)
        : null;
    const issued = await deps.keys.create(
      {
        name: body.name,
        owner: body.owner ?? ctx.key.owner,
        project: body.project ?? null,
        team: body.team ?? null,
        job: body.job ?? null,
        role: body.role ?? 'member',
        models: body.models ?? null,
        expiresAt,
      },
      actorOf(ctx),
    );
    return reply.code(201).send({ ...keyView(issued.key), key: issued.secret });
  });

  app.get('/api/v1/keys', { config: { format: 'admin' } }, async (request, reply) => {
    await adminContext(request, reply, deps);
    const query = parse(listQuery, request.query);
    const keys = await deps.keys.list({
      ...(query.project ? { project: query.project } : {}),
      includeRevoked: query.includeRevoked === 'true',
    });
    return reply.send({ data: keys.map(keyView) });
  });

  app.get('/api/v1/keys/:id', { config: { format: 'admin' } }, async (request, reply) => {
    await adminContext(request, reply, deps);
    const { id } = parse(idParams, request.params);
    return reply.send(keyView(await deps.keys.get(id)));
  });

  app.post('/api/v1/keys/:id/revoke', { config: { format: 'admin' } }, async (request, reply) => {
    const ctx = await adminContext(request, reply, deps);
    const { id } = parse(idParams, request.params);
    if (id === ctx.key.id)
      throw new AppError('conflict', 'A key cannot revoke itself; use another admin key.');
    return reply.send(keyView(await deps.keys.revoke(id, actorOf(ctx))));
  });

  app.post('/api/v1/keys/:id/rotate', { config: { format: 'admin' } }, async (request, reply) => {
    const ctx = await adminContext(request, reply, deps);
    const { id } = parse(idParams, request.params);
    const body = parse(rotateBody, request.body);
    const issued = await deps.keys.rotate(id, body.gracePeriodSeconds, actorOf(ctx));
    return reply.code(201).send({ ...keyView(issued.key), key: issued.secret });
  });
}

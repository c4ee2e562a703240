import { supervisorReportSchema } from '@flowloom/contracts';
import { AppError, parseInput as parse } from '@flowloom/errors';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { PolicyGate } from '../../app/policy-gate.js';
import type { JobStop } from '../../domain/jobs.js';
import { actorOf, adminFirst } from '../admin-auth.js';
import type { HttpDeps } from '../deps.js';
import { callerOf } from '../request-context.js';

const jobParams = z.object({
  job: z.string().regex(/^[\x21-\x7e]{1,200}$/, 'a job id is 1-200 printable ASCII characters'),
});
const stopBody = z.strictObject({ reason: z.string().min(1).max(1000).optional() });

function stopView(stop: JobStop) {
  return {
    stoppedAt: new Date(stop.stoppedAt).toISOString(),
    reason: stop.reason,
    stoppedBy: {
      actor: stop.actor,
      ...(stop.decisionId ? { decisionId: stop.decisionId } : {}),
      ...(stop.policy ? { policy: stop.policy } : {}),
      ...(stop.version ? { version: stop.version } : {}),
      ...(stop.rule ? { rule: stop.rule } : {}),
    },
  };
}

/**
 * /api/v1/jobs/{job}: what a supervisor (`flowloom run`) polls — running or stopped, by which decision,
 * with the job's live signals; and stop/clear for admins. /api/v1/gateway/policy: the bundle this
 * gateway enforces right now.
 */
export function registerAdminJobs(app: FastifyInstance, deps: HttpDeps & { policy: PolicyGate }): void {
  app.get(
    '/api/v1/jobs/:job',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const { job } = parse(jobParams, request.params);
      const { stop, ...status } = await deps.policy.jobStatus(job);
      return reply.send({ ...status, ...(stop ? stopView(stop) : {}) });
    },
  );

  app.post(
    '/api/v1/jobs/:job/stop',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const ctx = callerOf(request);
      const { job } = parse(jobParams, request.params);
      const body = parse(stopBody, request.body);
      const stop = await deps.policy.stopJob(job, body.reason ?? 'stopped by an admin', actorOf(ctx));
      return reply.send({ job, status: 'stopped', ...stopView(stop) });
    },
  );

  app.post(
    '/api/v1/jobs/:job/clear',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const ctx = callerOf(request);
      const { job } = parse(jobParams, request.params);
      const cleared = await deps.policy.clearJob(job, actorOf(ctx));
      if (!cleared) throw new AppError('not_found', `Job "${job}" is not stopped.`, { param: 'job' });
      return reply.send({ job, status: 'running', cleared: stopView(cleared) });
    },
  );

  // `flowloom run` reports what it did to the job's process itself (memory, CPU, output, silence),
  // so that its interventions are recorded like the policies'.
  app.post(
    '/api/v1/jobs/:job/interventions',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (request, reply) => {
      const ctx = callerOf(request);
      const { job } = parse(jobParams, request.params);
      const report = parse(supervisorReportSchema, request.body);
      const recorded = await deps.policy.recordSupervisorIntervention(
        job,
        report,
        actorOf(ctx),
        ctx.requestId,
      );
      return reply.code(201).send(recorded);
    },
  );

  app.get(
    '/api/v1/gateway/policy',
    { config: { format: 'admin' }, preParsing: adminFirst(deps) },
    async (_request, reply) => {
      return reply.send(deps.policy.status());
    },
  );
}

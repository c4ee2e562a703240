import { uuidv7 } from '@flowloom/contracts';
import { AppError, parseInput as parse } from '@flowloom/errors';
import { credentialHeaders, peerAddress } from '@flowloom/grpc';
import type { Logger } from '@flowloom/telemetry';
import type * as grpc from '@grpc/grpc-js';
import {
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
import type { DecisionsService, DecisionView } from '../app/decisions.js';
import type { PolicyAdmin } from '../app/policies.js';
import type { ReplayService } from '../app/replay.js';
import type { Actor, PolicyVersion } from '../domain/model.js';
import type { AdminAuthorizer } from '../http/routes.js';
import { statusOf } from './status.js';

export const ADMIN_SERVICE = 'flowloom.policy.v1.PolicyAdmin';

export interface PolicyAdminGrpcDeps {
  admin: PolicyAdmin;
  decisions: DecisionsService;
  replay: ReplayService;
  authorize: AdminAuthorizer;
  log: Logger;
}

interface PolicySourceMessage {
  source: string;
  documentJson: string;
  filename: string;
  format: string;
}

/** proto3 strings cannot be absent: an empty one is "not given", as an absent field over HTTP. */
const given = (value: string): string | undefined => (value === '' ? undefined : value);

/** The HTTP body this message stands for, so that the same schema checks both. */
function sourceBody(message: PolicySourceMessage | null) {
  const m = message ?? { source: '', documentJson: '', filename: '', format: '' };
  let document: unknown;
  if (m.documentJson !== '') {
    try {
      document = JSON.parse(m.documentJson);
    } catch (error) {
      throw new AppError('invalid_request', `document_json is not JSON: ${(error as Error).message}`, {
        param: 'document_json',
      });
    }
  }
  return {
    source: given(m.source),
    document,
    filename: given(m.filename),
    format: given(m.format),
  };
}

function versionMessage(v: PolicyVersion, full = false) {
  const view = versionView(v, full);
  return full ? { ...view, documentJson: JSON.stringify(v.document) } : view;
}

function diffMessage(result: { diff: { identical: boolean }; text: string; against?: string | null }) {
  return {
    text: result.text,
    diffJson: JSON.stringify(result.diff),
    identical: result.diff.identical,
    against: result.against ?? '',
  };
}

function decisionMessage(
  view: Omit<DecisionView, 'input' | 'evaluations' | 'explanation'> & {
    explanation?: string[];
  },
) {
  return {
    decisionId: view.decisionId,
    requestId: view.requestId,
    at: view.at,
    verdict: view.verdict,
    intendedVerdict: view.intendedVerdict,
    enforced: view.enforced,
    policy: view.policy ?? '',
    version: view.version ?? '',
    mode: view.mode ?? '',
    rule: view.rule ?? '',
    keyId: view.keyId ?? '',
    job: view.job ?? '',
    explanation: view.explanation ?? [],
    decisionJson: JSON.stringify(view),
  };
}

type Handler = (request: never, actor: Actor) => Promise<unknown>;

/**
 * flowloom.policy.v1.PolicyAdmin: the HTTP admin API's operations over gRPC. Each handler turns the
 * message into the body HTTP would have received, checks it with the same schema, calls the same use
 * case and answers with the same view, so the two APIs cannot drift apart.
 */
export function policyAdminHandlers(deps: PolicyAdminGrpcDeps): grpc.UntypedServiceImplementation {
  const authorize = async (call: grpc.ServerUnaryCall<unknown, unknown>) => {
    const peer = peerAddress(call);
    return actorOf(
      await deps.authorize(credentialHeaders(call.metadata), {
        requestId: uuidv7(),
        ...(peer ? { sourceIp: peer } : {}),
      }),
    );
  };
  // Every call is authorized first; errors leave with their code's status, internals never.
  const handle =
    (fn: Handler): grpc.handleUnaryCall<unknown, unknown> =>
    (call, callback) => {
      authorize(call)
        .then((actor) => fn(call.request as never, actor))
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(statusOf(error, deps.log), null),
        );
    };
  const { admin, decisions, replay } = deps;

  return {
    validate: handle(async (r: PolicySourceMessage) => admin.validate(parse(validateBody, sourceBody(r)))),

    pushVersion: handle(
      async (r: { policy: PolicySourceMessage | null; message: string; jobPolicy: boolean }, actor) => {
        const body = parse(pushBody, {
          ...sourceBody(r.policy),
          message: given(r.message),
          ...(r.jobPolicy ? { jobPolicy: true } : {}),
        });
        const pushed = await admin.push(body, actor);
        return {
          created: pushed.created,
          version: versionMessage(pushed.version),
          ...(pushed.diff ? { diff: ruleChanges(pushed.diff) } : {}),
        };
      },
    ),

    listPolicies: handle(async () => ({
      policies: (await admin.policies()).map((p) => ({
        name: p.name,
        latest: p.latest ? versionMessage(p.latest) : null,
        deployment: deploymentView(p.deployment),
      })),
    })),

    getPolicy: handle(async (r: { name: string }) => {
      const { name } = parse(nameParams, { name: given(r.name) });
      const p = await admin.policy(name);
      return {
        name: p.name,
        deployment: deploymentView(p.deployment),
        versions: p.versions.map((v) => versionMessage(v)),
        history: p.history.map(deploymentView),
        promotions: p.promotions.map(promotionView),
      };
    }),

    getVersion: handle(async (r: { name: string; version: string }) => {
      const { name, version } = parse(versionParams, { name: given(r.name), version: given(r.version) });
      return versionMessage(await admin.version(name, version), true);
    }),

    diffVersions: handle(async (r: { name: string; from: string; to: string }) => {
      const { name } = parse(nameParams, { name: given(r.name) });
      const { from, to } = parse(diffQuery, { from: given(r.from), to: given(r.to) });
      return diffMessage(await admin.diff(name, from, to));
    }),

    diffDocument: handle(async (r: PolicySourceMessage) =>
      diffMessage(await admin.diffDocument(parse(validateBody, sourceBody(r)))),
    ),

    promote: handle(
      async (r: { name: string; version: string; mode: string; percent?: number; by: string }, actor) => {
        const { name } = parse(nameParams, { name: given(r.name) });
        const body = parse(promoteBody, {
          version: given(r.version),
          mode: given(r.mode),
          percent: r.percent,
          by: given(r.by),
        });
        const result = await admin.promote(
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
          const id = result.promotion.id;
          return {
            status: 'pending',
            promotion: promotionView(result.promotion),
            next: `Another person approves it: PolicyAdmin/ApprovePromotion {id: "${id}"} (flowloom policy approve ${id}).`,
          };
        }
        return { status: 'applied', deployment: deploymentView(result.deployment) };
      },
    ),

    getPromotion: handle(async (r: { id: string }) => {
      const { id } = parse(idParams, { id: given(r.id) });
      return promotionView(await findPromotion(admin, id));
    }),

    approvePromotion: handle(async (r: { id: string }, actor) => {
      const { id } = parse(idParams, { id: given(r.id) });
      const { promotion, deployment } = await admin.approve(id, actor);
      return { promotion: promotionView(promotion), deployment: deploymentView(deployment) };
    }),

    rollback: handle(async (r: { name: string; to: string }, actor) => {
      const { name } = parse(nameParams, { name: given(r.name) });
      const { to } = parse(rollbackBody, { to: given(r.to) });
      return { deployment: deploymentView(await admin.rollback(name, actor, to)) };
    }),

    replay: handle(
      async (r: {
        name: string;
        version: string;
        baseline: string;
        since: string;
        limit: number;
        examples?: number;
      }) => {
        const name = given(r.name) === undefined ? undefined : parse(nameParams, { name: r.name }).name;
        const body = parse(replayBody, {
          version: given(r.version),
          baseline: given(r.baseline),
          since: given(r.since),
          limit: r.limit === 0 ? undefined : r.limit,
          examples: r.examples,
        });
        const result = await replay.replay(replayRequestOf(name, body));
        return {
          name: result.name,
          candidate: result.candidate,
          baseline: result.baseline ?? '',
          since: result.since,
          text: result.text,
          total: result.report.total,
          changed: result.report.changed,
          inWindow: result.inWindow,
          limit: result.limit,
          leftOut: result.leftOut,
          withoutInput: result.withoutInput,
          reportJson: JSON.stringify(result.report),
        };
      },
    ),

    getDecision: handle(async (r: { id: string }) => {
      const { id } = parse(idParams, { id: given(r.id) });
      return decisionMessage(await decisions.get(id));
    }),

    listDecisions: handle(
      async (r: {
        job: string;
        key: string;
        policy: string;
        verdict: string;
        since: string;
        limit: number;
      }) => {
        const query = parse(decisionsQuery, {
          job: given(r.job),
          key: given(r.key),
          policy: given(r.policy),
          verdict: given(r.verdict),
          since: given(r.since),
          limit: r.limit === 0 ? undefined : r.limit,
        });
        const records = await decisions.list(decisionFilterOf(query));
        return { decisions: records.map((record) => decisionMessage(withoutInput(record))) };
      },
    ),

    listInterventions: handle(async (r: { job: string; after: string; limit: number }) => {
      const { job } = parse(jobParams, { job: given(r.job) });
      const { after, limit } = parse(interventionsQuery, {
        after: given(r.after),
        limit: r.limit === 0 ? undefined : r.limit,
      });
      const page = await decisions.interventions(job, after, limit);
      return {
        interventions: page.data.map((i) => ({
          decisionId: i.decisionId,
          at: i.at,
          action: i.action,
          enforced: i.enforced,
          policy: i.policy,
          rule: i.rule ?? '',
          reason: i.reason,
          interventionJson: JSON.stringify(i),
        })),
        next: page.next ?? '',
      };
    }),
  };
}

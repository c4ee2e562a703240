import { errorResponses as errors, openApiErrorComponents } from '@flowloom/errors';
import { jobParam, parkedOutboxPaths } from './openapi.js';

// The policy service's admin API as a gateway serves it: mounted in `flowloom up`, forwarded by a
// standalone gateway with policy.httpUrl. Composed into the gateway's document only then.
const policyName = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
const versionParam = { name: 'version', in: 'path', required: true, schema: { type: 'string' } };
const promotionId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const limitParam = { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } };

const replayRequest = {
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['version'],
        properties: {
          version: { type: 'string' },
          baseline: { type: 'string' },
          since: { type: 'string', description: '24h, 30m, 7d or an ISO date; default 24h' },
          limit: { type: 'integer', description: 'the newest N decisions of the window; default 10,000' },
        },
      },
    },
  },
};
const REPLAY_RESPONSE =
  '{ name, report (with afterCall: decisions replayed after the answer for post-call rules; approximateAfterCall: those judged on a recorded answer to a request the candidate would have rerouted, redacted or capped otherwise; and missingInputs: decisions recorded without paths the baseline or the candidate reads), text, since, baseline, candidate, inWindow, limit, leftOut, withoutInput }';
export const policyApiDocument = {
  components: {
    responses: openApiErrorComponents.responses,
    schemas: {
      ...openApiErrorComponents.schemas,
      PolicySource: {
        type: 'object',
        properties: {
          source: { type: 'string', description: 'YAML or JSON text' },
          document: { type: 'object', description: 'Or the document as JSON' },
          filename: { type: 'string', description: 'Names the source in diagnostics; .json means JSON' },
          format: { enum: ['yaml', 'json'] },
          message: { type: 'string', description: 'Push: what changed and why' },
        },
      },
    },
  },
  paths: {
    '/api/v1/jobs/{job}/interventions': {
      get: {
        summary:
          "A job's interventions (shadow and canary findings included), in decision order; page with after=",
        parameters: [jobParam, { name: 'after', in: 'query', schema: { type: 'string' } }, limitParam],
        responses: { '200': { description: '{ data, next }' }, ...errors },
      },
    },
    '/api/v1/policies': {
      get: {
        summary: 'Policies with their latest version and deployment',
        responses: { '200': { description: '{ data }' }, ...errors },
      },
      post: {
        summary:
          'Push a policy (YAML or JSON source): a new immutable, content-hashed version; invalid ones are refused with file:line:column messages',
        requestBody: {
          content: { 'application/json': { schema: { $ref: '#/components/schemas/PolicySource' } } },
        },
        responses: {
          '201': { description: 'Stored' },
          '200': { description: 'Identical to a stored version' },
          ...errors,
        },
      },
    },
    '/api/v1/policies/validate': {
      post: {
        summary: 'Validate a policy without storing it',
        requestBody: {
          content: { 'application/json': { schema: { $ref: '#/components/schemas/PolicySource' } } },
        },
        responses: { '200': { description: '{ ok, name, version } or { ok: false, errors }' }, ...errors },
      },
    },
    '/api/v1/policies/diff': {
      post: {
        summary: 'Diff a policy source against the enforced version of that policy',
        requestBody: {
          content: { 'application/json': { schema: { $ref: '#/components/schemas/PolicySource' } } },
        },
        responses: { '200': { description: '{ diff, text, against }' }, ...errors },
      },
    },
    '/api/v1/policies/{name}': {
      get: {
        summary: "A policy's versions, deployment history and promotions",
        parameters: [policyName],
        responses: { '200': { description: 'Policy' }, '404': { description: 'Unknown policy' }, ...errors },
      },
    },
    '/api/v1/policies/{name}/versions/{version}': {
      get: {
        summary: 'One version with its source and normalized document (id or a prefix of 7+ characters)',
        parameters: [policyName, versionParam],
        responses: { '200': { description: 'Version' }, ...errors },
      },
    },
    '/api/v1/policies/{name}/diff': {
      get: {
        summary: 'Diff two versions (default: the latest against the one before it)',
        parameters: [
          policyName,
          { name: 'from', in: 'query', schema: { type: 'string' } },
          { name: 'to', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': { description: '{ diff, text }' }, ...errors },
      },
    },
    '/api/v1/policies/{name}/promotions': {
      post: {
        summary:
          'Promote a version: shadow applies at once; canary and enforce wait for approval by someone other than the author',
        parameters: [policyName],
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['version', 'mode'],
                properties: {
                  version: { type: 'string' },
                  mode: { enum: ['shadow', 'canary', 'enforce'] },
                  percent: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 100 },
                  by: { enum: ['job', 'key'] },
                },
              },
            },
          },
        },
        responses: {
          '201': { description: 'Applied (shadow)' },
          '202': { description: 'Pending approval' },
          ...errors,
        },
      },
    },
    '/api/v1/promotions/{id}': {
      get: {
        summary: 'A promotion',
        parameters: [promotionId],
        responses: { '200': { description: 'Promotion' }, ...errors },
      },
    },
    '/api/v1/promotions/{id}/approve': {
      post: {
        summary: "Approve a pending promotion (refused to the version's author); it applies at once",
        parameters: [promotionId],
        responses: { '200': { description: 'Applied' }, '409': { description: 'Not pending' }, ...errors },
      },
    },
    '/api/v1/policies/{name}/rollback': {
      post: {
        summary:
          'Put back the previous deployment, or enforce one version alone ({ to }: a version the policy enforced before; 409 otherwise)',
        parameters: [policyName],
        responses: { '200': { description: 'The deployment now in force' }, ...errors },
      },
    },
    '/api/v1/policies/{name}/replay': {
      post: {
        summary: 'Evaluate a candidate version against recorded traffic and count how decisions would change',
        parameters: [policyName],
        requestBody: replayRequest,
        responses: { '200': { description: REPLAY_RESPONSE }, ...errors },
      },
    },
    '/api/v1/replay': {
      post: {
        summary: 'Replay, with the policy found from the candidate version (an id or a unique prefix)',
        requestBody: replayRequest,
        responses: { '200': { description: REPLAY_RESPONSE }, ...errors },
      },
    },
    ...parkedOutboxPaths('/api/v1/policy-outbox', "the policy service's policy_outbox"),
    '/api/v1/policy-bundle': {
      get: {
        summary: 'The bundle the policy service distributes now',
        responses: { '200': { description: 'Bundle' }, ...errors },
      },
    },
    '/api/v1/decisions': {
      get: {
        summary: 'Recent decisions, newest first (filters: job, key, policy, verdict, since)',
        parameters: [
          { name: 'job', in: 'query', schema: { type: 'string' } },
          { name: 'key', in: 'query', schema: { type: 'string' } },
          { name: 'policy', in: 'query', schema: { type: 'string' } },
          { name: 'verdict', in: 'query', schema: { type: 'string' } },
          { name: 'since', in: 'query', schema: { type: 'string' } },
          limitParam,
        ],
        responses: { '200': { description: '{ data }' }, ...errors },
      },
    },
    '/api/v1/decisions/{id}': {
      get: {
        summary:
          'One decision (the x-flowloom-decision header): every rule with matched or not and the values it read, the action taken and intended, and why',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'Decision' },
          '404': { description: 'Unknown (or not recorded yet)' },
          ...errors,
        },
      },
    },
  },
} as const;

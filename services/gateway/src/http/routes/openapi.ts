import { errorResponses as errors, openApiErrorComponents } from '@flowloom/errors';
import type { FastifyInstance } from 'fastify';

const jobParam = { name: 'job', in: 'path', required: true, schema: { type: 'string' } };
const policyName = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
const versionParam = { name: 'version', in: 'path', required: true, schema: { type: 'string' } };
const promotionId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const limitParam = { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } };

const keyId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

/** The admin API's contract, served at /api/v1/openapi.json. */
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
  '{ name, report (with afterCall: decisions replayed after the answer for post-call rules, and missingInputs: decisions recorded without paths the baseline or the candidate reads), text, since, baseline, candidate, inWindow, limit, leftOut, withoutInput }';
export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'FlowLoom admin and gateway API',
    version: '1.0.0',
    description:
      'OpenAI- and Anthropic-compatible inference endpoints plus the admin API. Authenticate with "Authorization: Bearer <key>" or "x-api-key".',
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer' },
      apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
      googApiKey: { type: 'apiKey', in: 'header', name: 'x-goog-api-key' },
      googKeyQuery: { type: 'apiKey', in: 'query', name: 'key' },
    },
    responses: openApiErrorComponents.responses,
    schemas: {
      ...openApiErrorComponents.schemas,
      Key: {
        type: 'object',
        required: ['id', 'name', 'owner', 'role', 'hint', 'createdAt'],
        properties: {
          id: { type: 'string', format: 'uuid' },
          name: { type: 'string' },
          owner: { type: 'string' },
          project: { type: ['string', 'null'] },
          team: { type: ['string', 'null'] },
          job: { type: ['string', 'null'], description: 'Every request of this key is tagged with this job' },
          role: { enum: ['admin', 'member'] },
          models: { type: ['array', 'null'], items: { type: 'string' } },
          hint: { type: 'string', description: 'The first characters of the secret' },
          createdAt: { type: 'string', format: 'date-time' },
          expiresAt: { type: ['string', 'null'], format: 'date-time' },
          revokedAt: { type: ['string', 'null'], format: 'date-time' },
          rotatedFrom: { type: ['string', 'null'], format: 'uuid' },
        },
      },
      IssuedKey: {
        allOf: [
          { $ref: '#/components/schemas/Key' },
          {
            type: 'object',
            required: ['key'],
            properties: { key: { type: 'string', description: 'The secret; shown only once' } },
          },
        ],
      },
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
      CreateKey: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200 },
          owner: { type: 'string' },
          project: { type: 'string' },
          team: { type: 'string' },
          job: { type: 'string', description: 'Bind the key to one job (flowloom run)' },
          role: { enum: ['admin', 'member'], default: 'member' },
          models: {
            type: 'array',
            items: { type: 'string' },
            description: 'Model names or prefix patterns ending in *',
          },
          expiresAt: { type: 'string', format: 'date-time' },
          expiresInDays: { type: 'number', exclusiveMinimum: 0 },
        },
      },
    },
  },
  security: [{ bearer: [] }, { apiKey: [] }],
  paths: {
    '/v1/chat/completions': {
      post: {
        summary: 'OpenAI Chat Completions (streamed with stream: true)',
        responses: {
          '200': { description: 'A chat.completion or an SSE stream of chat.completion.chunk' },
          ...errors,
        },
      },
    },
    '/v1/messages': {
      post: {
        summary: 'Anthropic Messages (streamed with stream: true)',
        responses: { '200': { description: 'A message or an SSE stream' }, ...errors },
      },
    },
    '/v1/embeddings': {
      post: {
        summary: 'OpenAI Embeddings',
        responses: { '200': { description: 'A list of embeddings' }, ...errors },
      },
    },
    '/v1/models': {
      get: {
        summary: 'Models this key may use',
        responses: { '200': { description: 'A list of models' }, ...errors },
      },
    },
    '/api/v1/keys': {
      get: {
        summary: 'List keys',
        parameters: [
          { name: 'project', in: 'query', schema: { type: 'string' } },
          { name: 'includeRevoked', in: 'query', schema: { enum: ['true', 'false'] } },
        ],
        responses: {
          '200': {
            description: 'Keys',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: { data: { type: 'array', items: { $ref: '#/components/schemas/Key' } } },
                },
              },
            },
          },
          ...errors,
        },
      },
      post: {
        summary: 'Create a key; the secret is in the response once',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/CreateKey' } } },
        },
        responses: {
          '201': {
            description: 'Created',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/IssuedKey' } } },
          },
          ...errors,
        },
      },
    },
    '/api/v1/keys/{id}': {
      get: {
        summary: 'Show a key',
        parameters: [keyId],
        responses: {
          '200': {
            description: 'The key',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Key' } } },
          },
          '404': { description: 'Unknown key' },
          ...errors,
        },
      },
    },
    '/api/v1/keys/{id}/revoke': {
      post: {
        summary: 'Revoke a key at once',
        parameters: [keyId],
        responses: {
          '200': { description: 'The revoked key' },
          '404': { description: 'Unknown key' },
          ...errors,
        },
      },
    },
    '/api/v1/keys/{id}/rotate': {
      post: {
        summary: 'Issue a replacement; the old key works for the grace period',
        parameters: [keyId],
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: { gracePeriodSeconds: { type: 'integer', minimum: 0, default: 3600 } },
              },
            },
          },
        },
        responses: {
          '201': {
            description: 'The new key with its secret',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/IssuedKey' } } },
          },
          '404': { description: 'Unknown key' },
          ...errors,
        },
      },
    },
    '/api/v1/jobs/{job}': {
      get: {
        summary:
          "A job's status for supervisors: running or stopped (by which decision, policy, version, rule), with its live signals",
        parameters: [jobParam],
        responses: { '200': { description: 'Job status' }, ...errors },
      },
    },
    '/api/v1/jobs/{job}/stop': {
      post: {
        summary: 'Stop a job by hand: its requests are refused until it is cleared',
        parameters: [jobParam],
        requestBody: {
          content: {
            'application/json': { schema: { type: 'object', properties: { reason: { type: 'string' } } } },
          },
        },
        responses: { '200': { description: 'The stopped job' }, ...errors },
      },
    },
    '/api/v1/jobs/{job}/clear': {
      post: {
        summary: 'Clear a stopped job: its requests are served again',
        parameters: [jobParam],
        responses: {
          '200': { description: 'The job, running again' },
          '404': { description: 'Not stopped' },
          ...errors,
        },
      },
    },
    '/api/v1/jobs/{job}/interventions': {
      get: {
        summary:
          "A job's interventions (shadow and canary findings included), in decision order; page with after=",
        parameters: [jobParam, { name: 'after', in: 'query', schema: { type: 'string' } }, limitParam],
        responses: { '200': { description: '{ data, next }' }, ...errors },
      },
      post: {
        summary:
          "Record an intervention a supervisor (flowloom run) made on the job's process (memory, CPU, repeated output, silence): an intervention event with origin supervisor",
        parameters: [jobParam],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['watch', 'action', 'reason', 'version', 'signals', 'thresholds'],
                properties: {
                  watch: { type: 'string', enum: ['memory', 'cpu', 'repeated_output', 'silence'] },
                  action: { type: 'string', enum: ['alert', 'stop_job'] },
                  reason: { type: 'string' },
                  version: { type: 'string', description: 'hex SHA-256 of the watch settings' },
                  signals: { type: 'object', additionalProperties: { type: 'number' } },
                  thresholds: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        path: { type: 'string' },
                        operator: { type: 'string' },
                        value: { type: 'number' },
                      },
                    },
                  },
                  keyId: { type: 'string' },
                  attempt: { type: 'integer' },
                  pid: { type: 'integer' },
                  command: { type: 'string' },
                  at: { type: 'string', format: 'date-time' },
                },
              },
            },
          },
        },
        responses: { '201': { description: 'The recorded intervention' }, ...errors },
      },
    },
    '/api/v1/gateway/policy': {
      get: {
        summary: 'The policy bundle this gateway enforces now: revision, versions and modes',
        responses: { '200': { description: 'Active bundle' }, ...errors },
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
    '/v1beta/models/{model}:generateContent': {
      post: {
        summary: 'Gemini generateContent; key in x-goog-api-key or ?key=',
        security: [{ googApiKey: [] }, { googKeyQuery: [] }],
        parameters: [{ name: 'model', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'A GenerateContentResponse' }, ...errors },
      },
    },
    '/v1beta/models/{model}:streamGenerateContent': {
      post: {
        summary: 'Gemini streamGenerateContent (?alt=sse for server-sent events)',
        security: [{ googApiKey: [] }, { googKeyQuery: [] }],
        parameters: [
          { name: 'model', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'alt', in: 'query', schema: { enum: ['sse'] } },
        ],
        responses: { '200': { description: 'A stream of GenerateContentResponse' }, ...errors },
      },
    },
    '/api/v1/openapi.json': {
      get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } },
    },
    '/healthz': {
      get: { summary: 'Liveness', security: [], responses: { '200': { description: 'Alive' } } },
    },
    '/readyz': {
      get: {
        summary: 'Readiness with per-dependency checks',
        security: [],
        responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } },
      },
    },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics',
        security: [],
        responses: { '200': { description: 'Text exposition format' } },
      },
    },
  },
} as const;

/** An OpenAPI document, or the part of one a service mounted on the gateway contributes. */
export interface OpenApiDocument {
  readonly paths: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly components?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/**
 * One document from the gateway's and those of services whose routes are mounted on its server
 * (`flowloom up`): their paths and components are added as they are, never copied. A path
 * operation described twice, or a component of the same name described differently, is an error:
 * the composed document would silently describe one of them wrongly.
 */
export function composeOpenApi<T extends OpenApiDocument>(base: T, others: readonly OpenApiDocument[]): T {
  const paths: Record<string, Record<string, unknown>> = {};
  const components: Record<string, Record<string, unknown>> = {};
  for (const doc of [base, ...others]) {
    for (const [path, operations] of Object.entries(doc.paths)) {
      const into = paths[path] ?? {};
      paths[path] = into;
      for (const [method, operation] of Object.entries(operations)) {
        if (method in into) throw new Error(`OpenAPI: ${method.toUpperCase()} ${path} is described twice`);
        into[method] = operation;
      }
    }
    for (const [section, entries] of Object.entries(doc.components ?? {})) {
      const into = components[section] ?? {};
      components[section] = into;
      for (const [name, value] of Object.entries(entries)) {
        if (name in into && JSON.stringify(into[name]) !== JSON.stringify(value)) {
          throw new Error(`OpenAPI: components.${section}.${name} is described differently by two documents`);
        }
        into[name] = value;
      }
    }
  }
  return { ...base, components, paths };
}

/** Serves the gateway's document, with the documents of the routes other services mounted on it. */
export function registerOpenApi(app: FastifyInstance, mounted: readonly OpenApiDocument[] = []): void {
  const document = composeOpenApi(openApiDocument, mounted);
  app.get('/api/v1/openapi.json', async (_request, reply) => reply.send(document));
}

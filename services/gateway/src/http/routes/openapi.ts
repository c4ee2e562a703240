import { errorResponses as errors, openApiErrorComponents } from '@flowloom/errors';
import type { FastifyInstance } from 'fastify';

/** A job's name in a path (shared with the policy service's paths). */
export const jobParam = { name: 'job', in: 'path', required: true, schema: { type: 'string' } };

const keyId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

/**
 * The parked-events paths of an outbox under `prefix` (the gateway's `/api/v1/outbox`, the policy
 * service's `/api/v1/policy-outbox`), which parks in `where`.
 */
export function parkedOutboxPaths(prefix: string, where: string) {
  return {
    [`${prefix}/parked`]: {
      get: {
        summary: `Events the bus refused for good (e.g. too large for their Kafka topic), parked in ${where} while a stand-in (dev.flowloom.outbox.event.parked.v1) holds their place on the audit trail`,
        parameters: [
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        ],
        responses: {
          '200': {
            description:
              '{ total, data: [{ id, type, source, subject, time, sizeBytes, sha256, reason, parkedAt }] }, oldest first',
          },
          ...errors,
        },
      },
    },
    [`${prefix}/parked/redrive`]: {
      post: {
        summary:
          'Publish parked events again once the cause is fixed (e.g. the topic max.message.bytes raised); one refused again is parked again. Recorded on the audit trail as dev.flowloom.outbox.event.redriven.v1',
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  ids: {
                    type: 'array',
                    items: { type: 'string', format: 'uuid' },
                    description: 'The events to publish again; all parked events when omitted',
                  },
                },
              },
            },
          },
        },
        responses: {
          '200': { description: '{ requeued, published: [ids], parkedAgain: [ids], pending: [ids] }' },
          ...errors,
        },
      },
    },
  };
}

/** The admin API's contract, served at /api/v1/openapi.json. */
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
          createdBy: {
            type: ['string', 'null'],
            format: 'uuid',
            description:
              "The admin key that created it (a rotation keeps the old key's); null for the bootstrap key",
          },
          rotatedBy: {
            type: ['string', 'null'],
            format: 'uuid',
            description: 'The admin key that rotated the old key into this one',
          },
          status: {
            enum: ['active', 'suspended', 'revoked', 'expired'],
            description: 'suspended: refused until an admin resumes it (POST /api/v1/keys/{id}/resume)',
          },
          suspendedAt: { type: ['string', 'null'], format: 'date-time' },
          suspension: {
            type: ['object', 'null'],
            description: 'What suspended the key: the policy decision, and why',
            properties: {
              by: { type: 'string' },
              reason: { type: 'string' },
              decisionId: { type: 'string' },
              policy: { type: 'string' },
              version: { type: 'string' },
              rule: { type: 'string' },
            },
          },
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
    '/api/v1/keys/{id}/resume': {
      post: {
        summary: "Lift a key's suspension (by a policy's suspend_key); it works again at once",
        parameters: [keyId],
        responses: {
          '200': {
            description: 'The resumed key',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Key' } } },
          },
          '404': { description: 'Unknown key' },
          '409': { description: 'The key is not suspended, or is revoked' },
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
          '409': { description: 'The key is revoked: create a new key instead' },
          ...errors,
        },
      },
    },
    ...parkedOutboxPaths('/api/v1/outbox', 'the outbox'),
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

import type { FastifyInstance } from 'fastify';

const error = { $ref: '#/components/schemas/Error' };
const errors = {
  '400': { description: 'Invalid request', content: { 'application/json': { schema: error } } },
  '401': {
    description: 'Missing, unknown, revoked or expired key',
    content: { 'application/json': { schema: error } },
  },
  '403': { description: 'The key may not do this', content: { 'application/json': { schema: error } } },
};

const keyId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

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
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['message', 'type', 'code'],
            properties: {
              message: { type: 'string' },
              type: { type: 'string' },
              param: { type: ['string', 'null'] },
              code: { type: 'string' },
            },
          },
        },
      },
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

export function registerOpenApi(app: FastifyInstance): void {
  app.get('/api/v1/openapi.json', async (_request, reply) => reply.send(openApiDocument));
}

import { errorResponsesWithNotFound as errors, openApiErrorComponents } from '@flowloom/errors';

// The audit API's contract, served at /api/v1/audit/openapi.json; in `flowloom up` the gateway
// composes it into its own document (/api/v1/openapi.json), which then describes these routes too.

const q = (name: string, description: string, schema: Record<string, unknown> = { type: 'string' }) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});
const filters = [
  q('from', 'Event time ≥ (ISO 8601)', { type: 'string', format: 'date-time' }),
  q('to', 'Event time < (ISO 8601)', { type: 'string', format: 'date-time' }),
  q('type', 'Event type, or a prefix ending in *'),
  q('actor', 'Who acted (admin, or owner of the key)'),
  q('key', 'API key id'),
  q('project', 'Project tag'),
  q('job', 'Job tag'),
  q('outcome', 'Decision verdict, error code, action or `completed`'),
  q('q', 'Full-text search over the string values of events: every word must occur'),
];
const admin = [{ bearer: [] }, { apiKey: [] }];
const ok = (description: string) => ({ '200': { description }, ...errors });

export const auditOpenApi = {
  openapi: '3.1.0',
  info: {
    title: 'FlowLoom audit trail API',
    version: '1.0.0',
    description:
      'The append-only Merkle ledger: signed C2SP checkpoints, RFC 9162 inclusion and consistency proofs (hashes in base64), queries and evidence export. Admin endpoints need an admin key.',
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer' },
      apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
    },
    ...openApiErrorComponents,
  },
  paths: {
    '/api/v1/audit/openapi.json': {
      get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } },
    },
    '/api/v1/audit/public-key': {
      get: {
        summary: 'Verifier keys, current first (text/plain; JSON with Accept: application/json)',
        security: [],
        responses: { '200': { description: 'Keys' } },
      },
    },
    '/api/v1/audit/checkpoints/latest': {
      get: {
        summary: 'The latest signed checkpoint',
        security: [],
        responses: { '200': { description: 'Checkpoint' }, '404': errors['404'] },
      },
    },
    '/api/v1/audit/checkpoints': {
      get: {
        summary: 'Checkpoints in issue order',
        security: admin,
        parameters: [q('after', 'Id to continue after'), q('limit', '1–1000')],
        responses: ok('Page'),
      },
      post: {
        summary: 'Sign a checkpoint now',
        security: admin,
        responses: { '201': { description: 'Checkpoint' }, ...errors },
      },
    },
    '/api/v1/audit/info': {
      get: { summary: 'Origin, tree size, signing key id', security: admin, responses: ok('Info') },
    },
    '/api/v1/audit/proofs/inclusion': {
      get: {
        summary: 'Inclusion proof of an entry (by index or event id) against a signed checkpoint',
        security: admin,
        parameters: [
          q('index', 'Entry index'),
          q('eventId', 'Event id'),
          q('treeSize', 'Tree size (default: latest checkpoint)'),
        ],
        responses: ok('Proof'),
      },
      post: {
        summary: 'Inclusion proofs of up to 1000 entries: {indexes, treeSize}',
        security: admin,
        responses: ok('Proofs'),
      },
    },
    '/api/v1/audit/proofs/consistency': {
      get: {
        summary: 'Consistency proof between two tree sizes',
        security: admin,
        parameters: [q('from', 'Older size'), q('to', 'Newer size (default: latest checkpoint)')],
        responses: ok('Proof'),
      },
    },
    '/api/v1/audit/entries': {
      get: {
        summary: 'Query entries (newest first), paginated with nextCursor',
        security: admin,
        parameters: [
          ...filters,
          q('limit', '1–1000, default 100'),
          q('cursor', 'nextCursor of the previous page'),
          q('order', 'desc (default) or asc'),
        ],
        responses: ok(
          'Entries: {data, nextCursor, notSearched}. With q, notSearched counts the newest committed entries the search did not cover yet (their words are still being indexed after a burst; it waits up to 5 s for them first): ask again to cover them',
        ),
      },
    },
    '/api/v1/audit/entries/{index}': {
      get: { summary: 'One entry', security: admin, responses: ok('Entry') },
    },
    '/api/v1/audit/events/{eventId}': {
      get: { summary: 'The entry of an event', security: admin, responses: ok('Entry') },
    },
    '/api/v1/audit/log/entries': {
      get: {
        summary:
          'Raw evidence-bundle lines of [start, end) (≤ 10,000); a filter withholds non-matching entries as markers',
        security: admin,
        parameters: [q('start', 'First index'), q('end', 'End index (exclusive)'), ...filters],
        responses: ok('Page'),
      },
    },
    '/api/v1/audit/log/tiles': {
      get: {
        summary: 'Stored tree nodes covering [start, end)',
        security: admin,
        parameters: [q('start', ''), q('end', '')],
        responses: ok('Tiles'),
      },
    },
    '/api/v1/audit/stats': {
      get: { summary: 'Counts per event type, checkpoints, guards', security: admin, responses: ok('Stats') },
    },
    '/api/v1/audit/activity': {
      post: {
        summary: 'Record an export or verification made by a client',
        security: admin,
        responses: { '201': { description: 'Recorded' }, ...errors },
      },
    },
    '/api/v1/audit/keys/rotate': {
      post: { summary: 'Rotate the checkpoint signing key', security: admin, responses: ok('New key id') },
    },
    '/api/v1/audit/retention/run': {
      post: { summary: 'Apply retention now', security: admin, responses: ok('Pruned counts') },
    },
    '/api/v1/audit/reports/{standard}': {
      get: {
        summary: 'Compliance report (sox, hipaa, part11, iso27001, gdpr) as JSON',
        security: admin,
        responses: ok('Report'),
      },
    },
  },
};

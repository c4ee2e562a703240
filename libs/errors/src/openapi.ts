// The error body and error responses of the HTTP admin APIs, described once for every OpenAPI
// document: a document includes `openApiErrorComponents` in its components and refers to the
// responses (`errorResponses`), so documents composed into one share them instead of repeating them.

const json = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };

export const openApiErrorComponents = {
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
            code: { type: 'string', description: 'Stable error code' },
          },
        },
      },
    },
  },
  responses: {
    BadRequest: { description: 'Invalid request', content: json },
    Unauthorized: { description: 'Missing, unknown, revoked or expired key', content: json },
    Forbidden: { description: 'The key may not do this (an admin key is needed)', content: json },
    NotFound: { description: 'No such resource', content: json },
  },
} as const;

const ref = (name: keyof typeof openApiErrorComponents.responses) => ({
  $ref: `#/components/responses/${name}`,
});

/** The errors every authenticated operation may answer. */
export const errorResponses = {
  '400': ref('BadRequest'),
  '401': ref('Unauthorized'),
  '403': ref('Forbidden'),
} as const;

/** `errorResponses` plus 404, for operations on one named resource. */
export const errorResponsesWithNotFound = { ...errorResponses, '404': ref('NotFound') } as const;

import { describe, expect, it } from 'vitest';
import { composeOpenApi, openApiDocument } from './openapi.js';

const mounted = {
  components: { schemas: { Entry: { type: 'object' } } },
  paths: { '/api/v1/things': { get: { summary: 'Things' } } },
};

describe('composeOpenApi', () => {
  it('when a mounted document is composed, then its paths and components join the gateway document as they are', () => {
    const doc = composeOpenApi(openApiDocument, [mounted]);
    const paths = doc.paths as Record<string, Record<string, unknown>>;
    // Operations are the mounted document's own objects: composed, not copied.
    expect(paths['/api/v1/things']?.['get']).toBe(mounted.paths['/api/v1/things'].get);
    expect(doc.components.schemas).toHaveProperty('Entry');
    expect(doc.components.schemas).toHaveProperty('Key');
    expect(paths['/v1/chat/completions']?.['post']).toBe(openApiDocument.paths['/v1/chat/completions'].post);
    expect(openApiDocument.paths).not.toHaveProperty('/api/v1/things');
  });

  it('when an operation is described twice, then composing fails naming it', () => {
    expect(() =>
      composeOpenApi(openApiDocument, [{ paths: { '/v1/models': { get: { summary: 'again' } } } }]),
    ).toThrow('GET /v1/models is described twice');
  });

  it('when a component has the same name but another description, then composing fails; the same one is shared', () => {
    expect(() =>
      composeOpenApi(openApiDocument, [
        { paths: {}, components: { schemas: { Error: { type: 'string' } } } },
      ]),
    ).toThrow('components.schemas.Error');
    const shared = { paths: {}, components: { responses: openApiDocument.components.responses } };
    expect(() => composeOpenApi(openApiDocument, [shared])).not.toThrow();
  });
});

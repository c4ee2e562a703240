import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@flowloom/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPlatform, startEmbeddedPlatform } from '../src/commands/up.js';

type Doc = {
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, Record<string, unknown>>;
};

/** Fastify's `/a/:id` is OpenAPI's `/a/{id}`. */
const openApiPath = (url: string): string => url.replace(/:(\w+)/g, '{$1}');

/** Whether a served route (a trailing `*` matches any rest, e.g. Gemini's `model:method`) covers a path. */
const covers = (route: { method: string; url: string }, method: string, path: string): boolean =>
  route.method.toLowerCase() === method &&
  (route.url.endsWith('*')
    ? path.startsWith(route.url.slice(0, -1)) && path.length > route.url.length - 1
    : openApiPath(route.url) === path);

describe('the OpenAPI document of the embedded platform (flowloom up)', () => {
  let dir: string;
  let platform: EmbeddedPlatform;
  let doc: Doc;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowloom-openapi-'));
    const env = {
      FLOWLOOM_DATA_DIR: dir,
      FLOWLOOM_HTTP_PORT: '0',
      FLOWLOOM_GRPC_PORT: '0',
      FLOWLOOM_ADMIN_KEY: 'flk_openapi_test_admin_key_0123456789',
      FLOWLOOM_LOG_LEVEL: 'silent',
    };
    platform = await startEmbeddedPlatform(loadConfig({ env }), env);
    doc = (await (await fetch(`${platform.gateway.httpUrl}/api/v1/openapi.json`)).json()) as Doc;
  }, 120_000);
  afterAll(async () => {
    await platform?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('when every route the server serves is looked up, then the document describes it', () => {
    const routes = platform.gateway.routes();
    expect(routes.some((r) => r.url.startsWith('/api/v1/audit/'))).toBe(true);
    const undocumented = routes
      .filter(
        (r) =>
          !Object.entries(doc.paths).some(([path, operations]) =>
            Object.keys(operations).some((method) => covers(r, method, path)),
          ),
      )
      .map((r) => `${r.method} ${r.url}`);
    expect(undocumented).toEqual([]);
  });

  it('when every operation the document describes is looked up, then the server serves it', () => {
    const routes = platform.gateway.routes();
    const unserved = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.keys(operations)
        .filter((method) => !routes.some((r) => covers(r, method, path)))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(unserved).toEqual([]);
  });

  it('when the audit routes are described, then it is the audit service document, composed, not a copy', () => {
    const audit = platform.audit.openApi;
    for (const [path, operations] of Object.entries(audit.paths)) expect(doc.paths[path]).toEqual(operations);
    expect(doc.paths['/api/v1/keys']).toBeDefined();
  });

  it('when error responses are described, then each is defined once and referred to', () => {
    const text = JSON.stringify(doc);
    expect(text.match(/"Invalid request"/g)).toHaveLength(1);
    expect(doc.components['responses']).toHaveProperty('BadRequest');
    const refs = [...text.matchAll(/"\$ref":"#\/([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(refs).toContain('components/responses/Unauthorized');
    for (const ref of refs) {
      let node: unknown = doc;
      for (const part of ref.split('/')) node = (node as Record<string, unknown> | undefined)?.[part];
      expect(node, ref).toBeTypeOf('object');
    }
  });
});

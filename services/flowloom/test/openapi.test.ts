import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@flowloom/config';
import { type Gateway, startGateway } from '@flowloom/gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerForwarding } from '../src/commands/serve.js';
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

type Route = { method: string; url: string };

/** Served routes no operation of the document describes. */
const undocumented = (routes: readonly Route[], doc: Doc): string[] =>
  routes
    .filter(
      (r) =>
        !Object.entries(doc.paths).some(([path, operations]) =>
          Object.keys(operations).some((method) => covers(r, method, path)),
        ),
    )
    .map((r) => `${r.method} ${r.url}`);

/** Operations of the document no served route answers. */
const unserved = (routes: readonly Route[], doc: Doc): string[] =>
  Object.entries(doc.paths).flatMap(([path, operations]) =>
    Object.keys(operations)
      .filter((method) => !routes.some((r) => covers(r, method, path)))
      .map((method) => `${method.toUpperCase()} ${path}`),
  );

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
    expect(undocumented(routes, doc)).toEqual([]);
  });

  it('when every operation the document describes is looked up, then the server serves it', () => {
    expect(unserved(platform.gateway.routes(), doc)).toEqual([]);
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

describe('the OpenAPI document of a standalone gateway (flowloom serve gateway)', () => {
  let dir: string;
  const gateways: Gateway[] = [];

  /** The gateway as `serve gateway` wires it, on embedded storage, with these peer addresses. */
  async function standalone(env: Record<string, string>): Promise<{ gateway: Gateway; doc: Doc }> {
    const all = {
      FLOWLOOM_DATA_DIR: join(dir, String(gateways.length)),
      FLOWLOOM_HTTP_PORT: '0',
      FLOWLOOM_GRPC_PORT: '0',
      FLOWLOOM_ADMIN_KEY: 'flk_openapi_test_admin_key_0123456789',
      FLOWLOOM_LOG_LEVEL: 'silent',
      ...env,
    };
    const config = loadConfig({ env: all });
    const gateway = await startGateway({ config, env: all, ...peerForwarding(config) });
    gateways.push(gateway);
    const doc = (await (await fetch(`${gateway.httpUrl}/api/v1/openapi.json`)).json()) as Doc;
    return { gateway, doc };
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowloom-openapi-standalone-'));
  });
  afterAll(async () => {
    for (const gateway of gateways) await gateway.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('when the policy and audit APIs are forwarded, then the document describes exactly what it serves, theirs included', async () => {
    const { gateway, doc } = await standalone({
      FLOWLOOM_POLICY_HTTP_URL: 'http://127.0.0.1:9',
      FLOWLOOM_AUDIT_HTTP_URL: 'http://127.0.0.1:9',
    });
    expect(doc.paths).toHaveProperty(['/api/v1/policies']);
    expect(doc.paths).toHaveProperty(['/api/v1/audit/public-key']);
    expect(unserved(gateway.routes(), doc)).toEqual([]);
    expect(undocumented(gateway.routes(), doc)).toEqual([]);
  }, 120_000);

  it('when nothing is forwarded, then the document describes none of the policy and audit paths', async () => {
    const { doc } = await standalone({});
    const foreign = Object.keys(doc.paths).filter((path) =>
      /^\/api\/v1\/(audit|policies|promotions|replay|policy-bundle|decisions)/.test(path),
    );
    expect(foreign).toEqual([]);
    expect(Object.keys(doc.paths['/api/v1/jobs/{job}/interventions'] ?? {})).toEqual(['post']);
  }, 120_000);
});

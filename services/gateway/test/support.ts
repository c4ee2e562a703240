import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@flowloom/config';
import type { Db } from '@flowloom/store';
import { type Gateway, startGateway } from '../src/main.js';

/** Reads one sample of a Prometheus text exposition. */
export { sample } from './http-helpers.js';

export const TEST_ADMIN_KEY = 'flk_test-admin-key-0123456789abcdefghijklmnop';

export interface TestGateway {
  gateway: Gateway;
  url: string;
  adminKey: string;
  /** Creates a member key through the admin API and returns its secret and id. */
  createKey(body?: Record<string, unknown>): Promise<{ key: string; id: string }>;
  /** POSTs JSON with a key; returns status, headers and parsed body. */
  post(path: string, body: unknown, key?: string, headers?: Record<string, string>): Promise<TestResponse>;
  get(path: string, key?: string): Promise<TestResponse>;
  /** Every event the outbox published so far, in order. */
  events(): Promise<Array<{ type: string; data: Record<string, unknown>; subject?: string; id: string }>>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

async function toResponse(response: Response): Promise<TestResponse> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (SSE or plain text)
  }
  return { status: response.status, headers: response.headers, body, text };
}

/**
 * Starts a gateway on ports 0 with its own data folder (PGlite) or the given database, an admin key,
 * silent logs, and the given flowloom.yaml-style overrides.
 */
export async function startTestGateway(
  options: { overrides?: Record<string, unknown>; env?: Record<string, string>; db?: Db } = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'flowloom-gw-'));
  const env = options.env ?? {};
  const config = loadConfig({
    env,
    cwd: dir,
    overrides: {
      httpPort: 0,
      grpcPort: 0,
      logLevel: 'silent',
      adminKey: TEST_ADMIN_KEY,
      dataDir: dir,
      ...options.overrides,
    },
  });
  const gateway = await startGateway({ config, env, ...(options.db ? { db: options.db } : {}) });
  const published: Array<{ type: string; data: Record<string, unknown>; subject?: string; id: string }> = [];
  await gateway.bus.subscribe('test-recorder', async (event) => {
    published.push(event as (typeof published)[number]);
  });
  const url = gateway.httpUrl;
  const request = async (
    method: string,
    path: string,
    body: unknown,
    key: string | undefined,
    headers: Record<string, string> = {},
  ) =>
    toResponse(
      await fetch(`${url}${path}`, {
        method,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      }),
    );
  return {
    gateway,
    url,
    adminKey: TEST_ADMIN_KEY,
    async createKey(body = {}) {
      const res = await request('POST', '/api/v1/keys', { name: 'test', ...body }, TEST_ADMIN_KEY);
      if (res.status !== 201) throw new Error(`creating a key failed: ${res.status} ${res.text}`);
      const created = res.body as { key: string; id: string };
      return { key: created.key, id: created.id };
    },
    post: (path, body, key, headers) => request('POST', path, body, key, headers),
    get: (path, key) => request('GET', path, undefined, key),
    async events() {
      await gateway.flushOutbox();
      return published;
    },
    async close() {
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

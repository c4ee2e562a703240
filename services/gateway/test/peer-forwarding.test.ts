import { mkdtempSync, rmSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@flowloom/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerPeerForwarding } from '../src/http/routes/peer-forwarding.js';
import { type Gateway, startGateway } from '../src/main.js';
import { TEST_ADMIN_KEY } from './support.js';

// A standalone gateway forwarding the policy and audit admin APIs. The peer here is a plain HTTP
// server that records exactly what reaches it on the wire (what the real services do with it is
// tests/faults/one-url.test.ts): headers, bodies, what is never forwarded, streaming both ways.

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A peer that records every request; `/hold` answers in two parts, the second once released. */
class RecordingPeer {
  readonly received: Received[] = [];
  private readonly server = http.createServer((request, response) => this.handle(request, response));
  releaseSecondPart: () => void = () => {};
  firstRequestChunk: Promise<string> | undefined;
  url = '';

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private handle(request: http.IncomingMessage, response: ServerResponse): void {
    if (request.url === '/api/v1/audit/upload') {
      // Answers as soon as the body's first chunk arrives, while the caller still sends the rest.
      request.once('data', (chunk: Buffer) => {
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write(`first:${chunk.toString()}`);
        const rest: Buffer[] = [];
        request.on('data', (more: Buffer) => rest.push(more));
        request.on('end', () => response.end(`|rest:${Buffer.concat(rest).toString()}`));
      });
      return;
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      this.received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body,
      });
      if (request.url === '/api/v1/audit/hold') {
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write('part one;');
        this.releaseSecondPart = () => response.end('part two');
        return;
      }
      if (request.url === '/api/v1/audit/silent') return; // never answers
      response.writeHead(207, {
        'content-type': 'application/json',
        'x-peer': 'recorded',
        'keep-alive': 'timeout=5',
      });
      response.end(JSON.stringify({ method: request.method, url: request.url, body }));
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function gatewayWith(
  dir: string,
  forwarding: { policy?: string; audit?: string; timeoutMs?: number },
): Promise<Gateway> {
  const config = loadConfig({
    env: {},
    cwd: dir,
    overrides: { httpPort: 0, grpcPort: 0, logLevel: 'silent', adminKey: TEST_ADMIN_KEY, dataDir: dir },
  });
  return startGateway({
    config,
    env: {},
    plugins: [(app) => registerPeerForwarding(app, { timeoutMs: 10_000, ...forwarding })],
  });
}

/** A raw HTTP/1.1 request, for request targets fetch would normalize. */
function rawRequest(url: string, method: string, target: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const request = http.request({
      hostname,
      port,
      method,
      path: target,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    request.on('response', (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

let dir: string;
let peer: RecordingPeer;
let silentPeer: RecordingPeer;
let gateway: Gateway;
/** Audit forwarded to a closed port, policy not configured. */
let down: Gateway;
/** Audit forwarded to a peer that never answers. */
let slow: Gateway;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-forward-'));
  peer = await new RecordingPeer().listen();
  silentPeer = await new RecordingPeer().listen();
  const closed = await new RecordingPeer().listen();
  await closed.close();
  [gateway, down, slow] = await Promise.all([
    gatewayWith(join(dir, 'a'), { policy: peer.url, audit: peer.url }),
    gatewayWith(join(dir, 'b'), { audit: closed.url }),
    gatewayWith(join(dir, 'c'), { audit: silentPeer.url, timeoutMs: 300 }),
  ]);
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await down?.close();
  await slow?.close();
  await peer?.close();
  await silentPeer?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('forwarding the policy and audit admin APIs', () => {
  it('when an audit request is forwarded, then method, path, query, body and credentials reach the peer unchanged, with x-forwarded-for; its status and headers come back', async () => {
    const res = await fetch(`${gateway.httpUrl}/api/v1/audit/proofs/inclusion?index=3&size=10`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer flk_not-checked-by-the-gateway-0123456789',
        'x-api-key': 'second-credential',
        'content-type': 'application/json',
        'x-forwarded-for': '203.0.113.7',
      },
      body: '{"eventId": "e-1"}',
    });
    expect(res.status).toBe(207);
    expect(res.headers.get('x-peer')).toBe('recorded');
    expect(res.headers.get('keep-alive')).not.toBe('timeout=5'); // hop-by-hop: the peer's connection only
    expect(await res.json()).toEqual({
      method: 'POST',
      url: '/api/v1/audit/proofs/inclusion?index=3&size=10',
      body: '{"eventId": "e-1"}',
    });
    const got = peer.received.at(-1);
    expect(got?.headers.authorization).toBe('Bearer flk_not-checked-by-the-gateway-0123456789');
    expect(got?.headers['x-api-key']).toBe('second-credential');
    expect(got?.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(got?.headers['x-forwarded-proto']).toBe('http');
    expect(got?.headers['x-forwarded-host']).toBe(new URL(gateway.httpUrl).host);
    expect(got?.headers.host).toBe(new URL(peer.url).host);
  });

  it('when a policy path is asked, then it is forwarded: every prefix of the policy admin API, its parked events, and GET of a job’s interventions', async () => {
    const paths = [
      ['GET', '/api/v1/policies'],
      ['POST', '/api/v1/policies/validate'],
      ['GET', '/api/v1/policies/guard/versions/abc1234'],
      ['POST', '/api/v1/promotions/p-1/approve'],
      ['POST', '/api/v1/replay'],
      ['GET', '/api/v1/policy-bundle'],
      ['GET', '/api/v1/decisions?job=j'],
      ['GET', '/api/v1/decisions/d-1'],
      ['GET', '/api/v1/jobs/j-1/interventions?limit=5'],
      ['GET', '/api/v1/policy-outbox/parked?limit=5'],
      ['POST', '/api/v1/policy-outbox/parked/redrive'],
    ] as const;
    for (const [method, path] of paths) {
      const res = await fetch(`${gateway.httpUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
      expect(res.status, `${method} ${path}`).toBe(207);
      expect(peer.received.at(-1)?.url).toBe(path);
    }
  });

  it('when a path is outside the forwarded routes, or would read as another path at the peer, then it is never forwarded', async () => {
    const before = peer.received.length;
    const cases: Array<[string, string, number]> = [
      ['GET', '/api/v1/keys', 200], // the gateway's own
      ['POST', '/api/v1/jobs/j-1/interventions', 400], // the gateway's own (a supervisor's intervention)
      ['GET', '/api/v1/auditx/public-key', 404],
      ['GET', '/api/v1/audit/../keys', 400],
      ['GET', '/api/v1/audit/%2e%2e/keys', 400],
      ['GET', '/api/v1/audit/a%2fb', 400],
      ['DELETE', '/api/v1/policies/guard', 404],
      // Absolute-form: the router matches its path, the target check refuses it.
      ['GET', 'http://evil.example/api/v1/audit/public-key', 400],
    ];
    for (const [method, target, status] of cases) {
      const res = await rawRequest(gateway.httpUrl, method, target);
      expect(res.status, `${method} ${target}: ${res.body}`).toBe(status);
    }
    expect(peer.received.slice(before)).toEqual([]);
  });

  it('when the peer streams its answer, then the caller reads the first part before the peer has finished', async () => {
    const res = await fetch(`${gateway.httpUrl}/api/v1/audit/hold`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('part one;');
    peer.releaseSecondPart();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += new TextDecoder().decode(r.value);
    expect(rest).toBe('part two');
  });

  it('when the caller streams a body, then the peer gets its first chunk before the caller has sent the rest', async () => {
    let sendRest: () => void = () => {};
    const restSent = new Promise<void>((resolve) => (sendRest = resolve));
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode('chunk-1'));
        await restSent;
        controller.enqueue(new TextEncoder().encode('chunk-2'));
        controller.close();
      },
    });
    const res = await fetch(`${gateway.httpUrl}/api/v1/audit/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
      duplex: 'half',
    } as RequestInit);
    // The peer answered with the first chunk while the rest was still held back here.
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('first:chunk-1');
    sendRest();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += new TextDecoder().decode(r.value);
    expect(rest).toBe('|rest:chunk-2');
  });
});

describe('when a peer is down, slow or not configured', () => {
  it('when the audit service is not listening, then 502 in the admin error format names the service and the setting to check', async () => {
    const res = await fetch(`${down.httpUrl}/api/v1/audit/public-key`);
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { message: string; code: string; type: string } };
    expect(body.error.code).toBe('upstream_error');
    expect(body.error.message).toContain('audit service is not reachable (ECONNREFUSED)');
    expect(body.error.message).toContain('FLOWLOOM_AUDIT_HTTP_URL');
    // Not configured here: answers naming the setting, not a bare 404.
    const policy = await fetch(`${down.httpUrl}/api/v1/policies`);
    expect(policy.status).toBe(503);
    const policyBody = (await policy.json()) as { error: { message: string } };
    expect(policyBody.error.message).toContain('set FLOWLOOM_POLICY_HTTP_URL (policy.httpUrl)');
  });

  it('when the peer does not start answering in time, then 504 saying how long it waited and which setting sets it', async () => {
    const started = Date.now();
    const res = await fetch(`${slow.httpUrl}/api/v1/audit/silent`);
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const body = (await res.json()) as { error: { message: string; code: string } };
    expect(body.error.code).toBe('upstream_timeout');
    expect(body.error.message).toContain('audit service did not start answering within 300 ms');
    expect(body.error.message).toContain('FLOWLOOM_PEER_TIMEOUT_MS');
  });
});

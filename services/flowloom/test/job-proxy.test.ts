import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectAnswer, type JobProxy, type ProxyExchange, startJobProxy } from '../src/run/job-proxy.js';

// A stand-in gateway: records what reaches it and answers per path.
let upstream: Server;
let upstreamUrl: string;
const received: Array<{ path: string; headers: IncomingHttpHeaders; body: string }> = [];
let streamClosedEarly = false;

function answer(path: string, res: ServerResponse): void {
  if (path === '/v1/chat/completions') {
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-flowloom-decision': 'dec-1',
      'x-request-id': 'r-1',
    });
    res.end(
      JSON.stringify({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } }),
    );
  } else if (path === '/v1/blocked') {
    res.writeHead(403, { 'content-type': 'application/json', 'x-flowloom-decision': 'dec-2' });
    res.end(
      JSON.stringify({
        error: { message: 'Refused by policy', type: 'permission_error', code: 'policy_blocked' },
      }),
    );
  } else if (path === '/v1/stream') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
    const timer = setTimeout(() => res.end('data: [DONE]\n\n'), 400);
    res.on('close', () => {
      if (!res.writableFinished) {
        streamClosedEarly = true;
        clearTimeout(timer);
      }
    });
  } else {
    res.writeHead(404).end();
  }
}

let proxy: JobProxy;
const exchanges: ProxyExchange[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body });
      answer(req.url ?? '', res);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  proxy = await startJobProxy({ upstream: upstreamUrl, job: 'job-7', onExchange: (e) => exchanges.push(e) });
});

afterAll(async () => {
  await proxy.close();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
}

describe('the job endpoint', () => {
  it("when the job calls a model, then the request reaches the gateway tagged with the job (its own tag overridden) and with the job's own key", async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer flk_job',
        'content-type': 'application/json',
        'x-flowloom-job': 'other',
      },
      body: JSON.stringify({ model: 'm' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-flowloom-decision')).toBe('dec-1');
    const seen = received.at(-1)!;
    expect(seen.headers['x-flowloom-job']).toBe('job-7');
    expect(seen.headers.authorization).toBe('Bearer flk_job');
    expect(seen.body).toBe('{"model":"m"}');
    await until(() => exchanges.some((e) => e.requestId === 'r-1'));
    expect(exchanges.find((e) => e.requestId === 'r-1')).toMatchObject({
      method: 'POST',
      path: '/v1/chat/completions',
      status: 200,
      decisionId: 'dec-1',
      tokens: 15,
    });
  });

  it('when the gateway refuses, then the job gets the refusal as is and the supervisor its code, message and decision', async () => {
    const res = await fetch(`${proxy.url}/v1/blocked`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('policy_blocked');
    await until(() => exchanges.some((e) => e.decisionId === 'dec-2'));
    expect(exchanges.find((e) => e.decisionId === 'dec-2')).toMatchObject({
      status: 403,
      error: { code: 'policy_blocked', message: 'Refused by policy' },
    });
  });

  it('when the answer streams, then the first event arrives before the stream ends, and a job hanging up cancels the upstream call', async () => {
    const started = performance.now();
    const res = await fetch(`${proxy.url}/v1/stream`, { method: 'POST', body: '{}' });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('data: first');
    expect(performance.now() - started).toBeLessThan(400);
    await reader.cancel();
    await until(() => streamClosedEarly);
    expect(streamClosedEarly).toBe(true);
  });

  it('when the gateway cannot be reached, then the job gets a 502 in the OpenAI error format that says so', async () => {
    const dead = await startJobProxy({ upstream: 'http://127.0.0.1:9', job: 'j', onExchange: () => {} });
    try {
      const res = await fetch(`${dead.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
      expect(res.status).toBe(502);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('gateway_unreachable');
      expect(body.error.message).toContain('127.0.0.1:9');
    } finally {
      await dead.close();
    }
  });

  it('when answers are inspected, then errors of either client format and token usage are read, and anything else ignored', () => {
    expect(inspectAnswer('{"type":"error","error":{"type":"permission_error","message":"no"}}')).toEqual({
      error: { code: 'permission_error', message: 'no' },
    });
    expect(inspectAnswer('{"usage":{"input_tokens":3,"output_tokens":4}}')).toEqual({ tokens: 7 });
    expect(inspectAnswer('not json')).toBeUndefined();
    expect(inspectAnswer('[1]')).toBeUndefined();
  });
});

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signalCancellation } from '../cancellation.js';
import { bufferedRequest } from './buffered-request.js';

let server: Server;
let origin: string;
let received = 0;
const agent = new Agent({ connections: 4 });
const routes = new Map<string, (req: IncomingMessage, res: ServerResponse, body: string) => void>();

beforeAll(async () => {
  server = createServer((req, res) => {
    received++;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => routes.get(req.url ?? '')?.(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await agent.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const post = (path: string, signal = new AbortController().signal, body = '{"q":1}') =>
  bufferedRequest(
    agent,
    { origin, path, method: 'POST', headers: { 'content-type': 'application/json' }, body },
    signalCancellation(signal),
  );

describe('bufferedRequest', () => {
  it('when the answer arrives in pieces, then its text is whole and its headers are read on demand', async () => {
    routes.set('/pieces', (_req, res, body) => {
      res.writeHead(200, [
        ['Content-Type', 'application/json'],
        ['X-Seen', 'a'],
        ['X-Seen', 'b'],
      ]);
      res.write('\uFEFF{"echo":');
      setTimeout(() => res.end(`${body}}`), 5);
    });
    const answer = await post('/pieces');
    expect(answer.statusCode).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ echo: { q: 1 } });
    expect(answer.headers()['content-type']).toBe('application/json');
    expect(answer.headers()['x-seen']).toEqual(['a', 'b']);
  });

  it('when the answer is an error, then it resolves with its status, text and retry-after header', async () => {
    routes.set('/limited', (_req, res) => {
      res.writeHead(429, { 'retry-after': '3', 'content-type': 'application/json' });
      res.end('{"error":{"message":"slow down"}}');
    });
    const answer = await post('/limited');
    expect(answer.statusCode).toBe(429);
    expect(answer.text).toBe('{"error":{"message":"slow down"}}');
    expect(answer.headers()['retry-after']).toBe('3');
  });

  it('when an error answer breaks off mid-body, then its status is still reported, without text', async () => {
    routes.set('/broken-error', (_req, res) => {
      res.writeHead(503, { 'content-length': '100' });
      res.write('{"err');
      setTimeout(() => res.destroy(), 5);
    });
    const answer = await post('/broken-error');
    expect(answer.statusCode).toBe(503);
    expect(answer.text).toBe('');
  });

  it('when a 2xx answer breaks off mid-body, then it rejects', async () => {
    routes.set('/broken-ok', (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"ok');
      setTimeout(() => res.destroy(), 5);
    });
    await expect(post('/broken-ok')).rejects.toThrow();
  });

  it('when the signal aborts while waiting for the answer, then it rejects with the reason', async () => {
    routes.set('/never', () => {});
    const controller = new AbortController();
    const pending = post('/never', controller.signal);
    setTimeout(() => controller.abort(new Error('caller left')), 20);
    await expect(pending).rejects.toThrow('caller left');
  });

  it('when the signal has already aborted, then nothing is sent', async () => {
    const before = received;
    const controller = new AbortController();
    controller.abort(new Error('too late'));
    await expect(post('/pieces', controller.signal)).rejects.toThrow('too late');
    expect(received).toBe(before);
  });
});

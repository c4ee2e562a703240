import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedPost {
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Answers this late (a slow channel). */
  delayMs?: number;
}

export interface WebhookReceiver {
  url: string;
  posts: ReceivedPost[];
  /** Answers the next posts with these statuses (and headers), then 200. */
  answer(...replies: Array<Reply>): void;
  close(): Promise<void>;
}

/** A real HTTP server standing in for a Slack or pager webhook: records every POST it gets. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const posts: ReceivedPost[] = [];
  const replies: Array<Reply> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      posts.push({ at: Date.now(), path: req.url ?? '', headers: req.headers, body: JSON.parse(text) });
      const reply = replies.shift() ?? { status: 200 };
      setTimeout(() => res.writeHead(reply.status, reply.headers ?? {}).end('ok'), reply.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    posts,
    answer: (...r) => replies.push(...r),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A URL nobody listens on (a port that was free a moment ago). */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hook`;
}

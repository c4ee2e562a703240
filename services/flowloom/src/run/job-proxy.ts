import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { endToEndHeaders } from '@flowloom/gateway';

/** One request of the job through its endpoint, as the supervisor sees it. */
export interface ProxyExchange {
  method: string;
  path: string;
  /** 502 when the gateway could not be reached. */
  status: number;
  durationMs: number;
  requestId?: string;
  decisionId?: string;
  /** A JSON error answer's code and message (OpenAI or Anthropic format). */
  error?: { code?: string; message: string };
  /** Total tokens of a JSON (non-streamed) answer. */
  tokens?: number;
}

export interface JobProxyOptions {
  /** The gateway's base URL (FLOWLOOM_URL). */
  upstream: string;
  job: string;
  onRequest?(): void;
  onExchange(exchange: ProxyExchange): void;
}

export interface JobProxy {
  /** The job's endpoint, e.g. http://127.0.0.1:40123 (OpenAI clients add /v1). */
  url: string;
  close(): Promise<void>;
}

/** Answers up to this size are read for their error or usage; larger ones only pass through. */
const INSPECT_BYTES = 256 * 1024;

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Reads what a JSON answer tells a supervisor: an error (either client format) or the token usage. */
export function inspectAnswer(text: string): Pick<ProxyExchange, 'error' | 'tokens'> | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const record = body as Record<string, unknown>;
  const error = record.error as Record<string, unknown> | undefined;
  if (error && typeof error.message === 'string') {
    const code =
      typeof error.code === 'string' ? error.code : typeof error.type === 'string' ? error.type : undefined;
    return { error: { message: error.message, ...(code ? { code } : {}) } };
  }
  const usage = record.usage as Record<string, unknown> | undefined;
  if (!usage) return undefined;
  const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const tokens =
    n(usage.total_tokens) ||
    n(usage.prompt_tokens) + n(usage.completion_tokens) ||
    n(usage.input_tokens) + n(usage.output_tokens);
  return tokens > 0 ? { tokens } : undefined;
}

/**
 * The job's own endpoint on the loopback interface. It forwards every request to the gateway
 * unchanged except for `x-flowloom-job`, which it sets (an SDK reading OPENAI_BASE_URL cannot add
 * headers), and reports each exchange to the supervisor. It adds no credential: the job presents its
 * own key. Streams pass through as they arrive.
 */
export async function startJobProxy(options: JobProxyOptions): Promise<JobProxy> {
  const upstream = new URL(options.upstream);
  const basePath = upstream.pathname.replace(/\/+$/, '');
  const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    options.onRequest?.();
    const path = req.url ?? '/';
    const report = (exchange: Omit<ProxyExchange, 'method' | 'path' | 'durationMs'>): void =>
      options.onExchange({
        method: req.method ?? 'GET',
        path: path.split('?')[0] ?? path,
        durationMs: performance.now() - started,
        ...exchange,
      });
    const headers = endToEndHeaders(req.headers);
    headers['x-flowloom-job'] = options.job;
    const outgoing = send(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: `${basePath}${path}`,
        headers,
      },
      (answer) => {
        const status = answer.statusCode ?? 502;
        res.writeHead(status, endToEndHeaders(answer.headers));
        const type = headerText(answer.headers['content-type']) ?? '';
        const inspect = type.includes('json');
        const chunks: Buffer[] = [];
        let size = 0;
        answer.on('data', (chunk: Buffer) => {
          if (inspect && size < INSPECT_BYTES) {
            chunks.push(chunk);
            size += chunk.length;
          }
        });
        answer.pipe(res);
        answer.on('end', () => {
          const requestId = headerText(answer.headers['x-request-id']);
          const decisionId = headerText(answer.headers['x-flowloom-decision']);
          const seen =
            inspect && size < INSPECT_BYTES
              ? inspectAnswer(Buffer.concat(chunks).toString('utf8'))
              : undefined;
          report({
            status,
            ...(requestId ? { requestId } : {}),
            ...(decisionId ? { decisionId } : {}),
            ...seen,
          });
        });
        answer.on('error', () => res.destroy());
      },
    );
    outgoing.on('error', (error) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const message = `FlowLoom at ${upstream.origin} could not be reached: ${error.message}`;
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message, type: 'api_error', code: 'gateway_unreachable' } }));
      report({ status: 502, error: { code: 'gateway_unreachable', message } });
    });
    // The job hung up first: cancel the call upstream too.
    res.on('close', () => {
      if (!res.writableFinished) outgoing.destroy();
    });
    req.pipe(outgoing);
  };

  const server = createServer(handle);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

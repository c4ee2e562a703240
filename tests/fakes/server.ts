import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  FakeBehaviour,
  FakeErrorBehaviour,
  FakeProvider,
  FakeProviderKind,
  FakeProviderStats,
  FakeReplyContent,
  RecordedRequest,
} from './types.js';

export type Headers = Record<string, string>;

/** A complete HTTP answer. */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: string;
}

/** One server-sent event, already framed. `content` marks a text delta or tool-argument fragment. */
export interface StreamFrame {
  data: string;
  content: boolean;
}

export interface StreamPlan {
  headers: Headers;
  frames: readonly StreamFrame[];
}

export interface StreamErrorSpec {
  status: number;
  message: string | undefined;
  type: string | undefined;
}

/** How a provider renders a model call (chat, messages, generateContent, embeddings) it has validated. */
export interface ModelCall {
  stream: boolean;
  reply(content: FakeReplyContent): HttpAnswer;
  /** Only called when `stream` is true. */
  streamPlan(content: FakeReplyContent): StreamPlan;
  error(behaviour: FakeErrorBehaviour): HttpAnswer;
  /** The provider's in-stream error event, framed. */
  streamErrorFrame(spec: StreamErrorSpec): string;
  /** A malformed event stream in the provider's framing. */
  garbageFrames(): string;
  /** Headers every answer of this provider carries (request ids and the like). */
  baseHeaders(): Headers;
  /** The status a fault defaults to (Anthropic 529 overloaded, others 500). */
  faultStatus: number;
}

/** What a provider's router decided: answer at once (auth, validation, listings), or run a model call. */
export type Routed = { answer: HttpAnswer } | { call: ModelCall };

export interface IncomingCall {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** Parsed JSON, or undefined when the body is empty or not JSON (see `bodyText`, `bodyIsJson`). */
  json: unknown;
  bodyText: string;
  bodyIsJson: boolean;
}

export interface ProviderRouter {
  route(call: IncomingCall): Routed;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;
const SSE_CONTENT_TYPE = 'text/event-stream; charset=utf-8';

interface Waiter {
  predicate: (request: RecordedRequest) => boolean;
  resolve: (request: RecordedRequest) => void;
}

class RequestLog {
  private readonly ring: (RecordedRequest | undefined)[];
  private next = 0;
  private readonly waiters = new Set<Waiter>();
  seq = 0;
  aborted = 0;
  active = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<RecordedRequest | undefined>(capacity);
  }

  add(record: RecordedRequest): void {
    if (this.capacity > 0) {
      this.ring[this.next] = record;
      this.next = (this.next + 1) % this.capacity;
    }
    this.changed(record);
  }

  list(): RecordedRequest[] {
    const out: RecordedRequest[] = [];
    for (let i = 0; i < this.capacity; i++) {
      const record = this.ring[(this.next + i) % this.capacity];
      if (record !== undefined) out.push(record);
    }
    return out;
  }

  clear(): void {
    this.ring.fill(undefined);
    this.next = 0;
  }

  changed(record: RecordedRequest): void {
    if (this.waiters.size === 0) return;
    for (const waiter of this.waiters) {
      if (waiter.predicate(record)) {
        this.waiters.delete(waiter);
        waiter.resolve(record);
      }
    }
  }

  waitFor(predicate: (request: RecordedRequest) => boolean, timeoutMs: number): Promise<RecordedRequest> {
    const existing = this.list().find(predicate);
    if (existing !== undefined) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (request) => {
          clearTimeout(timer);
          resolve(request);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`fake provider: no matching request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }
}

/** Per-request state shared by the behaviour runner. */
interface Exchange {
  res: ServerResponse;
  record: RecordedRequest;
  /** The client went away (or we cut the socket): stop writing. */
  gone: boolean;
  /** We destroyed the socket on purpose; not a client abort. */
  cutByUs: boolean;
}

function parseQuery(search: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of search) out[key] = value;
  return out;
}

function writeHead(ex: Exchange, status: number, headers: Headers): void {
  ex.record.status = status;
  ex.res.writeHead(status, headers);
}

function sendAnswer(ex: Exchange, answer: HttpAnswer): void {
  if (ex.gone) return;
  writeHead(ex, answer.status, answer.headers);
  ex.res.end(answer.body);
}

function flushed(res: ServerResponse, data: string): Promise<void> {
  return new Promise((resolve) => {
    res.write(data, () => resolve());
  });
}

function cut(ex: Exchange): void {
  ex.cutByUs = true;
  ex.gone = true;
  ex.res.socket?.destroy();
}

type StreamEnd =
  | { how: 'complete' }
  | { how: 'error'; after: number; frame: string }
  | { how: 'disconnect'; after: number }
  | { how: 'hang'; after: number };

async function runStream(
  ex: Exchange,
  plan: StreamPlan,
  chunkDelayMs: number,
  end: StreamEnd,
): Promise<void> {
  if (ex.gone) return;
  writeHead(ex, 200, plan.headers);
  if (end.how === 'complete' && chunkDelayMs <= 0) {
    // The hot path: one write for the whole stream.
    let all = '';
    for (const frame of plan.frames) all += frame.data;
    ex.res.end(all);
    return;
  }
  ex.res.flushHeaders();
  const limit = end.how === 'complete' ? Number.POSITIVE_INFINITY : end.after;
  let sentContent = 0;
  let pending = '';
  for (const frame of plan.frames) {
    if (frame.content && sentContent >= limit) break;
    if (frame.content) sentContent++;
    if (chunkDelayMs > 0) {
      await flushed(ex.res, frame.data);
      await sleep(chunkDelayMs);
      if (ex.gone) return;
    } else {
      pending += frame.data;
    }
  }
  switch (end.how) {
    case 'complete':
      ex.res.end(pending);
      return;
    case 'error':
      ex.res.end(pending + end.frame);
      return;
    case 'disconnect':
      if (pending.length > 0) await flushed(ex.res, pending);
      cut(ex);
      return;
    case 'hang':
      if (pending.length > 0) ex.res.write(pending);
      return;
  }
}

async function runBehaviour(ex: Exchange, call: ModelCall, behaviour: FakeBehaviour): Promise<void> {
  if (behaviour.delayMs !== undefined && behaviour.delayMs > 0) {
    await sleep(behaviour.delayMs);
    if (ex.gone) return;
  }
  const chunkDelayMs = 'chunkDelayMs' in behaviour ? (behaviour.chunkDelayMs ?? 0) : 0;
  switch (behaviour.kind) {
    case 'reply':
      if (call.stream) await runStream(ex, call.streamPlan(behaviour), chunkDelayMs, { how: 'complete' });
      else sendAnswer(ex, call.reply(behaviour));
      return;
    case 'error':
      sendAnswer(ex, call.error(behaviour));
      return;
    case 'stream-error': {
      const spec: StreamErrorSpec = {
        status: behaviour.status ?? call.faultStatus,
        message: behaviour.message,
        type: behaviour.type,
      };
      if (!call.stream) {
        sendAnswer(
          ex,
          call.error({
            kind: 'error',
            status: spec.status,
            ...(spec.message !== undefined ? { message: spec.message } : {}),
            ...(spec.type !== undefined ? { type: spec.type } : {}),
          }),
        );
        return;
      }
      const frame = call.streamErrorFrame(spec);
      await runStream(ex, call.streamPlan(behaviour), chunkDelayMs, {
        how: 'error',
        after: behaviour.afterChunks,
        frame,
      });
      return;
    }
    case 'disconnect': {
      if (behaviour.afterChunks === undefined) {
        cut(ex);
        return;
      }
      if (call.stream) {
        await runStream(ex, call.streamPlan(behaviour), chunkDelayMs, {
          how: 'disconnect',
          after: behaviour.afterChunks,
        });
        return;
      }
      const answer = call.reply(behaviour);
      // Keep content-length of the whole body so the client sees a truncated message, not a short one.
      writeHead(ex, answer.status, {
        ...answer.headers,
        'content-length': String(Buffer.byteLength(answer.body)),
      });
      await flushed(ex.res, answer.body.slice(0, Math.floor(answer.body.length / 2)));
      cut(ex);
      return;
    }
    case 'hang': {
      if (behaviour.afterChunks === undefined) return;
      if (call.stream) {
        await runStream(ex, call.streamPlan(behaviour), chunkDelayMs, {
          how: 'hang',
          after: behaviour.afterChunks,
        });
        return;
      }
      writeHead(ex, 200, { ...call.baseHeaders(), 'content-type': 'application/json' });
      ex.res.flushHeaders();
      return;
    }
    case 'garbage': {
      const shape = behaviour.shape ?? (call.stream ? 'sse' : 'json');
      const contentType = shape === 'sse' ? SSE_CONTENT_TYPE : 'application/json';
      sendAnswer(ex, {
        status: behaviour.status ?? 200,
        headers: { ...call.baseHeaders(), 'content-type': contentType },
        body:
          behaviour.body ??
          (shape === 'sse'
            ? call.garbageFrames()
            : '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n'),
      });
      return;
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () =>
      resolve(
        chunks.length === 1 ? (chunks[0] ?? Buffer.alloc(0)).toString() : Buffer.concat(chunks).toString(),
      ),
    );
    req.on('error', reject);
  });
}

export interface ServeOptions {
  kind: FakeProviderKind;
  port: number;
  host: string;
  maxRecorded: number;
  router: ProviderRouter;
}

const DEFAULT_BEHAVIOUR: FakeBehaviour = { kind: 'reply' };

export async function serve(options: ServeOptions): Promise<FakeProvider> {
  const log = new RequestLog(options.maxRecorded);
  const queue: FakeBehaviour[] = [];
  let fallback: FakeBehaviour = DEFAULT_BEHAVIOUR;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = new URLSearchParams(queryAt === -1 ? '' : rawUrl.slice(queryAt + 1));
    const record: RecordedRequest = {
      seq: ++log.seq,
      method: req.method ?? 'GET',
      path,
      query: parseQuery(query),
      headers: req.headers,
      body: undefined,
      receivedAt: Date.now(),
      behaviour: undefined,
      status: undefined,
      completed: false,
      aborted: false,
    };
    const ex: Exchange = { res, record, gone: false, cutByUs: false };
    log.active++;
    res.on('close', () => {
      log.active--;
      ex.gone = true;
      if (res.writableFinished) {
        record.completed = true;
      } else if (!ex.cutByUs) {
        record.aborted = true;
        log.aborted++;
      }
      log.changed(record);
    });

    const bodyText = await readBody(req);
    let json: unknown;
    let bodyIsJson = false;
    if (bodyText.length > 0) {
      try {
        json = JSON.parse(bodyText);
        bodyIsJson = true;
      } catch {
        json = undefined;
      }
    }
    record.body = bodyIsJson ? json : bodyText.length > 0 ? bodyText : undefined;
    log.add(record);

    const routed = options.router.route({
      method: record.method,
      path,
      query,
      headers: req.headers,
      json,
      bodyText,
      bodyIsJson,
    });
    if ('answer' in routed) {
      sendAnswer(ex, routed.answer);
      return;
    }
    const behaviour = queue.shift() ?? fallback;
    record.behaviour = behaviour.kind;
    log.changed(record);
    await runBehaviour(ex, routed.call, behaviour);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`fake provider bug: ${error instanceof Error ? error.message : String(error)}`);
    });
  });
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;

  return {
    kind: options.kind,
    url: `http://${host}:${port}`,
    port,
    get requests(): readonly RecordedRequest[] {
      return log.list();
    },
    get stats(): FakeProviderStats {
      return { requests: log.seq, aborted: log.aborted, active: log.active };
    },
    script(...behaviours: FakeBehaviour[]): void {
      queue.push(...behaviours);
    },
    setDefault(behaviour: FakeBehaviour): void {
      fallback = behaviour;
    },
    reset(): void {
      queue.length = 0;
      fallback = DEFAULT_BEHAVIOUR;
      log.clear();
    },
    waitFor(predicate, timeoutMs = 5_000) {
      return log.waitFor(predicate, timeoutMs);
    },
    waitForAbort(timeoutMs = 5_000) {
      return log.waitFor((request) => request.aborted, timeoutMs);
    },
    close(): Promise<void> {
      return new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

export { SSE_CONTENT_TYPE };

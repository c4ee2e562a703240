import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { AppError } from '@flowloom/errors';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { sendError } from '../errors.js';
import { endToEndHeaders, forwardablePath, forwardedRequestHeaders } from '../peer-request.js';

/** A service whose admin API a standalone gateway serves by forwarding (`flowloom serve gateway`). */
export type Peer = 'policy' | 'audit';

interface PeerRoutes {
  readonly label: string;
  /** The variable and flowloom.yaml key that set its address. */
  readonly setting: string;
  readonly example: string;
  /** Exactly the peer's own routes (methods included): nothing else is ever forwarded. */
  readonly routes: ReadonlyArray<{ readonly methods: readonly HTTPMethods[]; readonly url: string }>;
}

const READ_WRITE: readonly HTTPMethods[] = ['GET', 'POST'];

export const PEER_ROUTES: Readonly<Record<Peer, PeerRoutes>> = {
  policy: {
    label: 'policy service',
    setting: 'FLOWLOOM_POLICY_HTTP_URL (policy.httpUrl)',
    example: 'http://policy:8080',
    routes: [
      { methods: READ_WRITE, url: '/api/v1/policies' },
      { methods: READ_WRITE, url: '/api/v1/policies/*' },
      { methods: READ_WRITE, url: '/api/v1/promotions/*' },
      { methods: ['POST'], url: '/api/v1/replay' },
      { methods: ['GET'], url: '/api/v1/policy-bundle' },
      { methods: ['GET'], url: '/api/v1/decisions' },
      { methods: ['GET'], url: '/api/v1/decisions/*' },
      // POST on this path is the gateway's own (a supervisor's intervention); reading them is the policy service's.
      { methods: ['GET'], url: '/api/v1/jobs/:job/interventions' },
      { methods: ['GET'], url: '/api/v1/policy-outbox/parked' },
      { methods: ['POST'], url: '/api/v1/policy-outbox/parked/redrive' },
    ],
  },
  audit: {
    label: 'audit service',
    setting: 'FLOWLOOM_AUDIT_HTTP_URL (audit.httpUrl)',
    example: 'http://audit:8080',
    routes: [{ methods: READ_WRITE, url: '/api/v1/audit/*' }],
  },
};

export interface PeerForwardingOptions {
  /** HTTP origins (`http://policy:8080`) of the peers; a peer left out answers 503 naming its setting. */
  readonly policy?: string | undefined;
  readonly audit?: string | undefined;
  /** How long to wait for a peer to start answering. */
  readonly timeoutMs: number;
}

class PeerTimeout extends Error {}

/** Connection errors that mean the peer is down or misaddressed, as opposed to a bug here. */
function peerFailure(peer: PeerRoutes, error: unknown, timeoutMs: number): AppError {
  if (error instanceof PeerTimeout) {
    return new AppError(
      'upstream_timeout',
      `The ${peer.label} did not start answering within ${timeoutMs} ms. Check that it is running and ready (its /readyz) and not overloaded; FLOWLOOM_PEER_TIMEOUT_MS (peerTimeoutMs) sets how long this gateway waits.`,
      { cause: error },
    );
  }
  const code = (error as NodeJS.ErrnoException).code ?? 'connection failed';
  return new AppError(
    'upstream_error',
    `The ${peer.label} is not reachable (${code}). Check that it is running and ready (its /readyz), and that ${peer.setting} on this gateway is its HTTP address.`,
    { cause: error },
  );
}

/** The peer's answer, or the error that kept it from starting. */
function send(
  target: URL,
  agent: http.Agent,
  request: FastifyRequest,
  path: string,
  timeoutMs: number,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const upstream = (target.protocol === 'https:' ? https : http).request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method: request.method,
      path,
      agent,
      headers: forwardedRequestHeaders(request.headers, {
        address: request.socket.remoteAddress,
        proto: 'encrypted' in request.socket && request.socket.encrypted ? 'https' : 'http',
      }),
    });
    // The wait for the answer to start; a long answer, once streaming, is not cut.
    const timer = setTimeout(() => upstream.destroy(new PeerTimeout()), timeoutMs);
    const caller = request.raw;
    upstream.once('response', (answer) => {
      clearTimeout(timer);
      resolve(answer);
    });
    upstream.once('error', (error) => {
      clearTimeout(timer);
      caller.unpipe(upstream);
      // Read what the caller still sends, so that the error can be answered on this connection.
      caller.resume();
      reject(error);
    });
    // The caller left before the whole body was sent: the peer must not act on a cut one.
    caller.once('aborted', () => upstream.destroy());
    caller.pipe(upstream);
  });
}

async function forward(
  peer: PeerRoutes,
  target: URL,
  agent: http.Agent,
  timeoutMs: number,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const checked = forwardablePath(request.raw.url ?? '');
  if ('refused' in checked) {
    request.raw.resume();
    return sendError(reply, 'admin', new AppError('invalid_request', `Not forwarded: ${checked.refused}.`));
  }
  let answer: IncomingMessage;
  try {
    answer = await send(target, agent, request, checked.path, timeoutMs);
  } catch (error) {
    return sendError(reply, 'admin', peerFailure(peer, error, timeoutMs));
  }
  // Streamed as it comes (exports, reports); the caller leaving destroys it, which ends the peer's.
  return reply
    .code(answer.statusCode ?? 502)
    .headers(endToEndHeaders(answer.headers))
    .send(answer);
}

function unconfigured(peer: PeerRoutes, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  request.raw.resume();
  return sendError(
    reply,
    'admin',
    new AppError(
      'unavailable',
      `This gateway does not serve the ${peer.label}'s API: set ${peer.setting} to the ${peer.label}'s HTTP address (e.g. ${peer.example}) so that it forwards these requests there, or call the ${peer.label} directly.`,
    ),
  );
}

/**
 * The policy and audit admin APIs on a standalone gateway's port, so that one URL serves everything
 * as in `flowloom up`: each of those routes is forwarded, body streamed both ways, to the peer's
 * configured address, which authenticates the caller itself. Without an address they answer 503
 * naming the setting.
 */
export function registerPeerForwarding(app: FastifyInstance, options: PeerForwardingOptions): void {
  app.register(async (scope) => {
    // Bodies pass through unread: the peer parses and limits them.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
    for (const name of ['policy', 'audit'] as const) {
      const peer = PEER_ROUTES[name];
      const address = options[name];
      const target = address === undefined ? undefined : new URL(address);
      const agent = target && new (target.protocol === 'https:' ? https : http).Agent({ keepAlive: true });
      if (agent) scope.addHook('onClose', async () => agent.destroy());
      for (const route of peer.routes) {
        scope.route({
          method: [...route.methods],
          url: route.url,
          config: { format: 'admin' },
          handler: async (request, reply) =>
            target && agent
              ? forward(peer, target, agent, options.timeoutMs, request, reply)
              : unconfigured(peer, request, reply),
        });
      }
    }
  });
}

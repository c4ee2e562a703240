import { uuidv7 } from '@flowloom/contracts';
import { AppError, grpcStatusOf } from '@flowloom/errors';
import { credentialHeaders, GrpcHealth, listen, peerAddress, type ServingCheck } from '@flowloom/grpc';
import type { StreamEvent, Usage } from '@flowloom/providers';
import type { Logger } from '@flowloom/telemetry';
import * as grpc from '@grpc/grpc-js';
import { type Authenticator, presentedKey } from '../app/authenticate.js';
import { asAppError, type CallOptions, type ChatService } from '../app/chat.js';
import type { RequestContext } from '../app/context.js';
import { requestTags, type TagInput } from '../app/request-tags.js';
import type { Router } from '../app/router.js';
import { keyAllowsModel } from '../domain/keys.js';
import { decodeGrpcChatRequest } from './decode.js';
import { KEYS_ADMIN_SERVICE, type KeysAdminGrpcDeps, keysAdminHandlers } from './keys-admin.js';
import { loadService, PROTO_ROOT } from './load.js';
import type { GrpcChatRequest, GrpcUsage } from './messages.js';

export interface GrpcDeps extends KeysAdminGrpcDeps {
  auth: Authenticator;
  chat: ChatService;
  router: Router;
  /** Whether the gateway can serve inference, as /readyz says (grpc.health.v1). */
  ready: ServingCheck;
  /** Whether the keys database answers: key administration needs it (grpc.health.v1). */
  databaseUp: ServingCheck;
}

export const GATEWAY_SERVICE = 'flowloom.gateway.v1.Gateway';

const usageOf = (u: Usage): GrpcUsage => ({
  inputTokens: u.inputTokens,
  outputTokens: u.outputTokens,
  cachedInputTokens: u.cachedInputTokens,
});

function toStatus(error: unknown): Partial<grpc.StatusObject> {
  const e = asAppError(error);
  return { code: grpcStatusOf(e), details: e.message };
}

/**
 * What a chat call learned so far, as the HTTP API says it in headers: the request id from the start,
 * the decision id as soon as a policy decided (so a refusal carries it too).
 */
interface CallFacts {
  readonly requestId: string;
  decisionId?: string;
}

function newCallFacts(): CallFacts {
  return { requestId: uuidv7() };
}

function factsMetadata(facts: CallFacts): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('x-request-id', facts.requestId);
  if (facts.decisionId) metadata.set('x-flowloom-decision', facts.decisionId);
  return metadata;
}

/** Initial metadata of an answer: the HTTP API's routing headers. */
function routingMetadata(facts: CallFacts, deployment: string, attempts: number): grpc.Metadata {
  const metadata = factsMetadata(facts);
  metadata.set('x-flowloom-deployment', deployment);
  metadata.set('x-flowloom-attempts', String(attempts));
  return metadata;
}

/** A refused or failed chat call: its status, with the request and decision ids in the trailers. */
function refusal(error: unknown, facts: CallFacts): Partial<grpc.StatusObject> {
  return { ...toStatus(error), metadata: factsMetadata(facts) };
}

/**
 * A tag from the request's field (`job`, `session`, `project`) or, as HTTP callers send it, from the
 * `x-flowloom-*` metadata; both given, they must agree.
 */
function tagOf(
  call: { request: Partial<GrpcChatRequest>; metadata: grpc.Metadata },
  field: 'job' | 'session' | 'project',
): TagInput {
  const header = `x-flowloom-${field}`;
  const fromField = call.request[field] || undefined;
  const values = call.metadata.get(header);
  const fromMetadata = values.length === 0 ? undefined : values.map(String).join(', ');
  if (fromField !== undefined && fromMetadata !== undefined && fromField !== fromMetadata) {
    throw new AppError(
      'invalid_request',
      `The request's ${field} field ('${fromField}') and its ${header} metadata ('${fromMetadata}') disagree; send one of them.`,
      { param: field },
    );
  }
  return fromField !== undefined ? { value: fromField, name: field } : { value: fromMetadata, name: header };
}

/**
 * The call's metadata as the request headers a policy reads (`request.headers`), as the HTTP API passes
 * its headers: names lower-case (as grpc-js keeps them), binary `-bin` entries left out. The policy gate
 * drops credentials (authorization, api keys, tokens, cookies) from both alike.
 */
function metadataHeaders(metadata: grpc.Metadata): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(metadata.toJSON())) {
    if (name.endsWith('-bin')) continue;
    const texts = values.filter((value): value is string => typeof value === 'string');
    const [only] = texts;
    if (only !== undefined) headers[name] = texts.length === 1 ? only : texts;
  }
  return headers;
}

async function contextOf(
  call: grpc.ServerUnaryCall<GrpcChatRequest, unknown> | grpc.ServerWritableStream<GrpcChatRequest, unknown>,
  auth: Authenticator,
  requestId: string = uuidv7(),
): Promise<RequestContext> {
  const startedAt = performance.now();
  const peer = peerAddress(call);
  const key = await auth.authenticate(presentedKey(credentialHeaders(call.metadata)), {
    surface: 'model',
    api: 'grpc',
    requestId,
    ...(peer ? { sourceIp: peer } : {}),
  });
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort(new Error('client cancelled')));
  const tags = requestTags(key, {
    job: tagOf(call, 'job'),
    session: tagOf(call, 'session'),
    project: tagOf(call, 'project'),
  });
  return {
    requestId,
    api: 'grpc',
    key,
    tags,
    signal: controller.signal,
    startedAt,
  };
}

function chunkOf(event: StreamEvent): Record<string, unknown> | undefined {
  switch (event.type) {
    case 'text':
      return event.delta === '' ? undefined : { textDelta: event.delta };
    case 'tool_call_start':
      return { toolCall: { index: event.index, id: event.id, name: event.name, argumentsDelta: '' } };
    case 'tool_call_delta':
      return { toolCall: { index: event.index, id: '', name: '', argumentsDelta: event.argumentsDelta } };
    case 'finish':
      return { finishReason: event.finishReason };
    default:
      return undefined;
  }
}

/** Call options: the metadata a policy may read, and a hook noting the decision as soon as it is made. */
function callOptions(call: { metadata: grpc.Metadata }, facts: CallFacts): CallOptions {
  return {
    headers: metadataHeaders(call.metadata),
    onDecision: (id) => {
      facts.decisionId = id;
    },
  };
}

/** flowloom.gateway.v1.Gateway, flowloom.gateway.v1.KeysAdmin and grpc.health.v1.Health on one server. */
export async function startGrpcServer(
  deps: GrpcDeps,
  host: string,
  port: number,
  log: Logger,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024 });
  const Gateway = loadService(`${PROTO_ROOT}/flowloom/gateway/v1/gateway.proto`, [
    'flowloom',
    'gateway',
    'v1',
    'Gateway',
  ]);
  // The gateway as a whole serves as /readyz says, even while key administration cannot (the database
  // down, events spooling): a load balancer keeps sending it inference.
  const health = new GrpcHealth({
    services: { [GATEWAY_SERVICE]: deps.ready, [KEYS_ADMIN_SERVICE]: deps.databaseUp },
    server: deps.ready,
  });

  server.addService(Gateway.service, {
    chat: (call: grpc.ServerUnaryCall<GrpcChatRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      void (async () => {
        const facts = newCallFacts();
        try {
          const ctx = await contextOf(call, deps.auth, facts.requestId);
          const result = await deps.chat.complete(
            ctx,
            decodeGrpcChatRequest(call.request, false),
            callOptions(call, facts),
          );
          const r = result.response;
          call.sendMetadata(routingMetadata(facts, result.deployment.id, result.attempts));
          callback(null, {
            id: r.id,
            model: call.request.model,
            content: r.content ?? '',
            toolCalls: r.toolCalls,
            finishReason: r.finishReason,
            usage: usageOf(r.usage),
            deployment: result.deployment.id,
            attempts: result.attempts,
            requestId: ctx.requestId,
            costUsd: result.costUsd,
            decisionId: facts.decisionId ?? '',
          });
        } catch (error) {
          callback(refusal(error, facts), null);
        }
      })();
    },
    chatStream: (call: grpc.ServerWritableStream<GrpcChatRequest, unknown>) => {
      void (async () => {
        const facts = newCallFacts();
        try {
          const ctx = await contextOf(call, deps.auth, facts.requestId);
          const stream = await deps.chat.stream(
            ctx,
            decodeGrpcChatRequest(call.request, true),
            callOptions(call, facts),
          );
          call.sendMetadata(routingMetadata(facts, stream.deployment.id, stream.attempts));
          let started = false;
          for await (const event of stream.events) {
            if (call.cancelled) break;
            if (!started && event.type === 'start') {
              started = true;
              call.write({
                started: {
                  id: event.id,
                  model: call.request.model,
                  deployment: stream.deployment.id,
                  attempts: stream.attempts,
                  requestId: ctx.requestId,
                  decisionId: facts.decisionId ?? '',
                },
              });
              continue;
            }
            const chunk = chunkOf(event);
            if (chunk) call.write(chunk);
          }
          if (!call.cancelled) {
            call.write({ usage: usageOf(stream.usage()) });
            call.end();
          }
        } catch (error) {
          // grpc-js sends the status and ends the call on an 'error' emit; destroy() would leave the
          // client waiting for a status that never comes.
          call.emit('error', Object.assign(new Error(asAppError(error).message), refusal(error, facts)));
        }
      })();
    },
    listModels: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      void (async () => {
        try {
          const ctx = await contextOf(call as grpc.ServerUnaryCall<GrpcChatRequest, unknown>, deps.auth);
          const models = deps.router.listModels().filter((m) => keyAllowsModel(ctx.key, m.id));
          callback(null, { models: models.map((m) => ({ id: m.id, ownedBy: m.ownedBy })) });
        } catch (error) {
          callback(toStatus(error), null);
        }
      })();
    },
  });

  const KeysAdmin = loadService(`${PROTO_ROOT}/flowloom/gateway/v1/gateway.proto`, [
    'flowloom',
    'gateway',
    'v1',
    'KeysAdmin',
  ]);
  server.addService(KeysAdmin.service, keysAdminHandlers(deps, log));
  health.addTo(server);

  const boundPort = await listen(server, host, port);
  return {
    port: boundPort,
    close: () =>
      new Promise<void>((resolve) => {
        health.shutdown();
        const force = setTimeout(() => {
          log.warn('gRPC calls still running after 30 s; forcing shutdown');
          server.forceShutdown();
          resolve();
        }, 30_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

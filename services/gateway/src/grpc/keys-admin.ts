import { uuidv7 } from '@flowloom/contracts';
import { grpcStatusOf, isAppError, parseInput as parse } from '@flowloom/errors';
import { credentialHeaders, peerAddress } from '@flowloom/grpc';
import type { Logger } from '@flowloom/telemetry';
import type * as grpc from '@grpc/grpc-js';
import type { AdminAuthorizer } from '../admin-authorizer.js';
import type { KeysAdmin } from '../app/keys-admin.js';
import {
  assertNotSelf,
  createKeyBody,
  createKeyInput,
  keyIdParams,
  keyView,
  listKeysFilter,
  listKeysQuery,
  rotateKeyBody,
} from '../app/keys-requests.js';
import type { KeyRecord } from '../domain/keys.js';

export const KEYS_ADMIN_SERVICE = 'flowloom.gateway.v1.KeysAdmin';

export interface KeysAdminGrpcDeps {
  keys: KeysAdmin;
  authorizeAdmin: AdminAuthorizer;
}

interface Caller {
  actor: string;
  keyId: string;
  owner: string;
}

/** proto3 strings cannot be absent: an empty one is "not given", as an absent field over HTTP. */
const given = (value: string): string | undefined => (value === '' ? undefined : value);

const keyMessage = (key: KeyRecord) => {
  const view = keyView(key);
  return {
    ...view,
    models: view.models ?? [],
    suspension: view.suspension ?? undefined,
    policy: view.policy ?? '',
  };
};

type Handler = (request: never, caller: Caller) => Promise<unknown>;

/**
 * flowloom.gateway.v1.KeysAdmin: /api/v1/keys over gRPC. Each handler turns the message into the body
 * the HTTP route would get and goes through the same schema, use case and view; a secret leaves only
 * in the answer that issues it.
 */
export function keysAdminHandlers(deps: KeysAdminGrpcDeps, log: Logger): grpc.UntypedServiceImplementation {
  const authorize = (call: grpc.ServerUnaryCall<unknown, unknown>): Promise<Caller> => {
    const peer = peerAddress(call);
    return deps.authorizeAdmin(credentialHeaders(call.metadata), {
      requestId: uuidv7(),
      ...(peer ? { sourceIp: peer } : {}),
    });
  };
  const handle =
    (fn: Handler): grpc.handleUnaryCall<unknown, unknown> =>
    (call, callback) => {
      authorize(call)
        .then((caller) => fn(call.request as never, caller))
        .then(
          (response) => callback(null, response),
          (error: unknown) => {
            if (isAppError(error)) {
              callback({ code: grpcStatusOf(error), details: error.message }, null);
              return;
            }
            log.error({ err: error }, 'keys admin gRPC: unhandled error');
            callback({ code: grpcStatusOf(error), details: 'Internal error. Retry later.' }, null);
          },
        );
    };
  const { keys } = deps;

  return {
    createKey: handle(
      async (
        r: {
          name: string;
          owner: string;
          project: string;
          team: string;
          job: string;
          role: string;
          models: string[];
          expiresAt: string;
          expiresInDays?: number;
          policy: string;
        },
        caller,
      ) => {
        const body = parse(createKeyBody, {
          name: given(r.name),
          owner: given(r.owner),
          project: given(r.project),
          team: given(r.team),
          job: given(r.job),
          role: given(r.role),
          models: r.models.length > 0 ? r.models : undefined,
          expiresAt: given(r.expiresAt),
          expiresInDays: r.expiresInDays,
          policy: given(r.policy),
        });
        const issued = await keys.create(createKeyInput(body, caller.owner), {
          label: caller.actor,
          keyId: caller.keyId,
        });
        return { key: keyMessage(issued.key), secret: issued.secret };
      },
    ),

    listKeys: handle(async (r: { project: string; includeRevoked: boolean }) => {
      const query = parse(listKeysQuery, {
        project: given(r.project),
        includeRevoked: r.includeRevoked ? 'true' : 'false',
      });
      const listed = await keys.list(listKeysFilter(query));
      return { keys: listed.map(keyMessage) };
    }),

    getKey: handle(async (r: { id: string }) => {
      const { id } = parse(keyIdParams, { id: given(r.id) });
      return keyMessage(await keys.get(id));
    }),

    revokeKey: handle(async (r: { id: string }, caller) => {
      const { id } = parse(keyIdParams, { id: given(r.id) });
      assertNotSelf(id, caller.keyId);
      return keyMessage(await keys.revoke(id, { label: caller.actor, keyId: caller.keyId }));
    }),

    resumeKey: handle(async (r: { id: string }, caller) => {
      const { id } = parse(keyIdParams, { id: given(r.id) });
      return keyMessage(await keys.resume(id, { label: caller.actor, keyId: caller.keyId }));
    }),

    rotateKey: handle(async (r: { id: string; gracePeriodSeconds?: number }, caller) => {
      const { id } = parse(keyIdParams, { id: given(r.id) });
      const { gracePeriodSeconds } = parse(rotateKeyBody, { gracePeriodSeconds: r.gracePeriodSeconds });
      const issued = await keys.rotate(id, gracePeriodSeconds, { label: caller.actor, keyId: caller.keyId });
      return { key: keyMessage(issued.key), secret: issued.secret };
    }),
  };
}

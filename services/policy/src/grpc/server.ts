import { fileURLToPath } from 'node:url';
import { bundleToWire, type PolicyBundle } from '@flowloom/contracts';
import { AppError, grpcStatusOf, isAppError } from '@flowloom/errors';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { BundleDistributor } from '../app/distribution.js';
import type { AdminAuthorizer } from '../http/routes.js';

const PROTO_ROOT = fileURLToPath(new URL('../../../../proto', import.meta.url));

function loadDistribution(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(`${PROTO_ROOT}/flowloom/policy/v1/policy.proto`, {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_ROOT],
  });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    flowloom: { policy: { v1: { PolicyDistribution: grpc.ServiceClientConstructor } } };
  };
  return root.flowloom.policy.v1.PolicyDistribution;
}

/**
 * Bundles hold every policy a gateway enforces, so only gateways may read them: the caller presents
 * its service credential (an admin key) in `authorization`, checked by the same authorizer as the
 * admin HTTP API. A missing or unknown key is UNAUTHENTICATED, a non-admin key PERMISSION_DENIED.
 */
async function authorizeGateway(metadata: grpc.Metadata, authorize: AdminAuthorizer): Promise<void> {
  const first = (name: string): string | undefined => {
    const value = metadata.get(name)[0];
    return typeof value === 'string' ? value : undefined;
  };
  try {
    await authorize({ authorization: first('authorization'), 'x-api-key': first('x-api-key') });
  } catch (error) {
    if (!isAppError(error)) throw error;
    throw new AppError(
      error.code,
      `Policy bundles need the gateway's service credential (an admin key in metadata "authorization: Bearer <key>"; the gateway sends FLOWLOOM_POLICY_SERVICE_KEY, else FLOWLOOM_ADMIN_KEY): ${error.message}`,
    );
  }
}

function statusOf(error: unknown): Partial<grpc.StatusObject> {
  return {
    code: grpcStatusOf(error),
    details: isAppError(error) ? error.message : 'Internal error. Retry later.',
  };
}

/**
 * flowloom.policy.v1.PolicyDistribution: each gateway keeps a WatchBundle stream open and gets the
 * active bundle at once, then every new revision as soon as it is known here.
 */
export async function startPolicyGrpc(
  distributor: BundleDistributor,
  authorize: AdminAuthorizer,
  host: string,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  const streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  const watch = (call: grpc.ServerWritableStream<unknown, unknown>): void => {
    streams.add(call);
    const unsubscribe = distributor.subscribe((bundle: PolicyBundle) => {
      if (!call.cancelled) call.write(bundleToWire(bundle));
    });
    const done = (): void => {
      unsubscribe();
      streams.delete(call);
    };
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
  };
  server.addService(loadDistribution().service, {
    watchBundle: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      authorizeGateway(call.metadata, authorize).then(
        () => {
          if (!call.cancelled) watch(call);
        },
        // grpc-js ends a server stream with the status of an emitted error.
        (error: unknown) => call.emit('error', statusOf(error)),
      );
    },
    getBundle: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      authorizeGateway(call.metadata, authorize).then(
        () => callback(null, bundleToWire(distributor.current())),
        (error: unknown) => callback(statusOf(error), null),
      );
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, actual) =>
      error ? reject(error) : resolve(actual),
    ),
  );
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        for (const call of streams) call.end();
        server.tryShutdown(() => resolve());
      }),
  };
}

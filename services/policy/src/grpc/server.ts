import { bundleToWire, type PolicyBundle } from '@flowloom/contracts';
import { AppError, isAppError } from '@flowloom/errors';
import { credentialHeaders, GrpcHealth, listen, loadService, type ServingCheck } from '@flowloom/grpc';
import * as grpc from '@grpc/grpc-js';
import type { BundleDistributor } from '../app/distribution.js';
import type { AdminAuthorizer } from '../http/routes.js';
import { ADMIN_SERVICE, type PolicyAdminGrpcDeps, policyAdminHandlers } from './admin.js';
import { statusOf } from './status.js';

export const DISTRIBUTION_SERVICE = 'flowloom.policy.v1.PolicyDistribution';

export interface PolicyGrpcDeps extends PolicyAdminGrpcDeps {
  distributor: BundleDistributor;
  /** Checks admin credentials, as on the HTTP admin API. */
  authorize: AdminAuthorizer;
  /** Whether the policy database answers (grpc.health.v1). */
  databaseUp: ServingCheck;
}

/**
 * Bundles hold every policy a gateway enforces, so only gateways may read them: the caller presents
 * its service credential (an admin key) in `authorization`, checked by the same authorizer as the
 * admin HTTP API. A missing or unknown key is UNAUTHENTICATED, a non-admin key PERMISSION_DENIED.
 */
async function authorizeGateway(metadata: grpc.Metadata, authorize: AdminAuthorizer): Promise<void> {
  try {
    await authorize(credentialHeaders(metadata));
  } catch (error) {
    if (!isAppError(error)) throw error;
    throw new AppError(
      error.code,
      `Policy bundles need the gateway's service credential (an admin key in metadata "authorization: Bearer <key>"; the gateway sends FLOWLOOM_POLICY_SERVICE_KEY, else FLOWLOOM_ADMIN_KEY): ${error.message}`,
    );
  }
}

/**
 * flowloom.policy.v1.PolicyDistribution: each gateway keeps a WatchBundle stream open and gets the
 * active bundle at once, then every new revision as soon as it is known here. On the same server,
 * flowloom.policy.v1.PolicyAdmin (the admin API) and grpc.health.v1.Health.
 */
export async function startPolicyGrpc(
  deps: PolicyGrpcDeps,
  host: string,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const { distributor, authorize } = deps;
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
  const Distribution = loadService('flowloom/policy/v1/policy.proto', [
    'flowloom',
    'policy',
    'v1',
    'PolicyDistribution',
  ]);
  server.addService(Distribution.service, {
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
    getVersion: (
      call: grpc.ServerUnaryCall<{ version?: string }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      authorizeGateway(call.metadata, authorize)
        .then(() => deps.admin.versionById(call.request.version ?? ''))
        .then(
          (v) =>
            callback(null, { name: v.name, version: v.version, documentJson: JSON.stringify(v.document) }),
          (error: unknown) => callback(statusOf(error), null),
        );
    },
  });
  const Admin = loadService('flowloom/policy/v1/policy.proto', ['flowloom', 'policy', 'v1', 'PolicyAdmin']);
  server.addService(Admin.service, policyAdminHandlers(deps));

  // Bundles are served from memory, so they outlast a database outage; the admin API and the server
  // as a whole (its readiness) follow the database, as /readyz does.
  const health = new GrpcHealth({
    services: { [DISTRIBUTION_SERVICE]: null, [ADMIN_SERVICE]: deps.databaseUp },
  });
  health.addTo(server);

  const bound = await listen(server, host, port);
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        health.shutdown();
        for (const call of streams) call.end();
        server.tryShutdown(() => resolve());
      }),
  };
}

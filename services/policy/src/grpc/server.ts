import { fileURLToPath } from 'node:url';
import { bundleToWire, type PolicyBundle } from '@flowloom/contracts';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { BundleDistributor } from '../app/distribution.js';

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
 * flowloom.policy.v1.PolicyDistribution: each gateway keeps a WatchBundle stream open and gets the
 * active bundle at once, then every new revision as soon as it is known here.
 */
export async function startPolicyGrpc(
  distributor: BundleDistributor,
  host: string,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  const streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  server.addService(loadDistribution().service, {
    watchBundle: (call: grpc.ServerWritableStream<unknown, unknown>) => {
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
    },
    getBundle: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      callback(null, bundleToWire(distributor.current()));
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

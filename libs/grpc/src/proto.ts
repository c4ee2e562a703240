import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// grpc-js prints its own errors to stderr (e.g. "E No address added out of total 1 resolved" for a
// port in use), unformatted and ahead of the message FlowLoom gives for the same failure. Every such
// failure reaches the caller as an error anyway; GRPC_VERBOSITY=DEBUG|INFO|ERROR still turns them on.
if (process.env.GRPC_VERBOSITY === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);

/** The repository's proto/ folder: the .proto files are the source of truth, loaded at start. */
export const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));

/** How every FlowLoom server and client loads the contracts: camelCase fields, enums as names, defaults set. */
export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

/** A service's constructor from a .proto file (absolute, or relative to PROTO_ROOT) and its package path. */
export function loadService(file: string, path: readonly string[]): grpc.ServiceClientConstructor {
  const absolute = file.startsWith('/') ? file : `${PROTO_ROOT}/${file}`;
  let node: unknown = grpc.loadPackageDefinition(protoLoader.loadSync(absolute, PROTO_OPTIONS));
  for (const part of path) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function') throw new Error(`no service ${path.join('.')} in ${absolute}`);
  return node as grpc.ServiceClientConstructor;
}

/**
 * The credentials a call carries, as the HTTP admin API reads them from headers (`authorization:
 * Bearer <key>` or `x-api-key`), so one authorizer serves both.
 */
export function credentialHeaders(metadata: grpc.Metadata): Record<string, string | undefined> {
  const first = (name: string): string | undefined => {
    const value = metadata.get(name)[0];
    return typeof value === 'string' ? value : undefined;
  };
  return { authorization: first('authorization'), 'x-api-key': first('x-api-key') };
}

/**
 * The caller's IP address, for audit records. A server call's peer is `address:port` (IPv6 unbracketed,
 * e.g. `::1:5678`); a client's is `ipv4:1.2.3.4:5678` or `ipv6:[::1]:5678`.
 */
export function peerAddress(call: { getPeer(): string }): string | undefined {
  const address = call
    .getPeer()
    .replace(/^ipv[46]:/, '')
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1');
  return address === '' || address === 'unknown' ? undefined : address;
}

/** Binds a plaintext server on host:port (an IPv6 host in brackets or not); port 0 takes a free one. */
export function listen(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(
      `${host.includes(':') ? `[${host}]` : host}:${port}`,
      grpc.ServerCredentials.createInsecure(),
      (error, bound) =>
        error
          ? reject(new Error(`cannot listen for gRPC on ${host}:${port}: ${error.message}`))
          : resolve(bound),
    );
  });
}

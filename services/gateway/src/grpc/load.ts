import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The repository's proto/ folder: the .proto files are the source of truth, loaded at start. */
export const PROTO_ROOT = fileURLToPath(new URL('../../../../proto', import.meta.url));

export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export function loadService(file: string, path: string[]): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(file, PROTO_OPTIONS);
  let node: unknown = grpc.loadPackageDefinition(definition);
  for (const part of path) node = (node as Record<string, unknown>)[part];
  return node as grpc.ServiceClientConstructor;
}

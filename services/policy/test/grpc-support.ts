import { loadService } from '@flowloom/grpc';
import * as grpc from '@grpc/grpc-js';

export type HealthStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** A grpc.health.v1.Health client, as a load balancer or kubelet would use it. */
export function healthClient(address: string) {
  const Health = loadService('grpc/health/v1/health.proto', ['grpc', 'health', 'v1', 'Health']);
  return new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    check(
      request: { service: string },
      ...rest:
        | [(error: grpc.ServiceError | null, response?: { status: HealthStatus }) => void]
        | [grpc.CallOptions, (error: grpc.ServiceError | null, response?: { status: HealthStatus }) => void]
    ): void;
    watch(request: { service: string }): grpc.ClientReadableStream<{ status: HealthStatus }>;
  };
}

/** Metadata with `authorization: Bearer <owner>` (see testAuthorizer), or none. */
export function as(owner?: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (owner) metadata.set('authorization', `Bearer ${owner}`);
  return metadata;
}

export interface UnaryResult<T> {
  response?: T;
  error?: grpc.ServiceError;
}

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void,
) => void;

/** A flowloom.policy.v1.PolicyAdmin client: `call('pushVersion', {...}, 'alice')` answers or fails. */
export function policyAdminClient(address: string) {
  const Admin = loadService('flowloom/policy/v1/policy.proto', ['flowloom', 'policy', 'v1', 'PolicyAdmin']);
  const client = new Admin(address, grpc.credentials.createInsecure()) as unknown as grpc.Client &
    Record<string, UnaryMethod>;
  return {
    call<T = Record<string, unknown>>(
      method: string,
      request: object,
      owner?: string,
    ): Promise<UnaryResult<T>> {
      const fn = client[method];
      if (typeof fn !== 'function') throw new Error(`PolicyAdmin has no method ${method}`);
      return new Promise((resolve) =>
        fn.call(client, request, as(owner), { deadline: Date.now() + 10_000 }, (error, response) =>
          resolve(error ? { error } : { response: response as T }),
        ),
      );
    },
    close: () => client.close(),
  };
}

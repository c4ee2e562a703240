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

import { grpcStatusOf, isAppError } from '@flowloom/errors';
import type { Logger } from '@flowloom/telemetry';
import type * as grpc from '@grpc/grpc-js';

/** The status an error ends a call with (libs/errors' mapping); an internal fault is logged, not shown. */
export function statusOf(error: unknown, log?: Logger): Partial<grpc.StatusObject> {
  if (isAppError(error)) return { code: grpcStatusOf(error), details: error.message };
  log?.error({ err: error }, 'policy gRPC: unhandled error');
  return { code: grpcStatusOf(error), details: 'Internal error. Retry later.' };
}

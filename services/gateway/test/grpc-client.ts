import { loadService } from '@flowloom/grpc';
import * as grpc from '@grpc/grpc-js';

// A typed grpc-js client of flowloom.gateway.v1.Gateway for tests, with the messages as
// @grpc/proto-loader delivers them (camelCase fields, defaults filled in).

export interface GatewayChatResponse {
  id: string;
  content: string;
  deployment: string;
  attempts: number;
  requestId: string;
  decisionId: string;
  costUsd: number;
}

export interface GatewayChatChunk {
  started?: { id: string; deployment: string; attempts: number; requestId: string; decisionId: string };
  textDelta?: string;
  finishReason?: string;
}

export interface GatewayClient extends grpc.Client {
  chat(
    request: object,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, value?: GatewayChatResponse) => void,
  ): grpc.ClientUnaryCall;
  chatStream(
    request: object,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
  ): grpc.ClientReadableStream<GatewayChatChunk>;
}

/** A client of the Gateway service at `address` (host:port), without TLS. */
export function gatewayClient(address: string): GatewayClient {
  const Gateway = loadService('flowloom/gateway/v1/gateway.proto', ['flowloom', 'gateway', 'v1', 'Gateway']);
  return new Gateway(address, grpc.credentials.createInsecure()) as unknown as GatewayClient;
}

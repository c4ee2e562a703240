// TypeScript shapes of flowloom.gateway.v1 messages as @grpc/proto-loader delivers them
// (camelCase fields, defaults filled in, int64 as number).

export interface GrpcToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface GrpcMessage {
  role: string;
  content: string;
  toolCalls: GrpcToolCall[];
  toolCallId: string;
}

export interface GrpcChatRequest {
  model: string;
  messages: GrpcMessage[];
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop: string[];
  tools: Array<{ name: string; description: string; parametersJson: string }>;
  toolChoice: string;
  responseFormat: string;
  job: string;
  session: string;
  project: string;
}

export interface GrpcUsage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
}

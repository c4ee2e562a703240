import { AppError } from '@flowloom/errors';
import type { ChatRequest, JsonObject, Message } from '@flowloom/providers';
import type { GrpcChatRequest, GrpcMessage } from './messages.js';

function decodeMessage(m: GrpcMessage, index: number): Message {
  switch (m.role) {
    case 'system':
      return { role: 'system', content: m.content };
    case 'user':
      return { role: 'user', content: [{ type: 'text', text: m.content }] };
    case 'assistant':
      return {
        role: 'assistant',
        content: m.content === '' && m.toolCalls.length > 0 ? null : m.content,
        ...(m.toolCalls.length > 0
          ? { toolCalls: m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })) }
          : {}),
      };
    case 'tool':
      if (!m.toolCallId)
        throw new AppError('invalid_request', `messages[${index}].tool_call_id is required for role tool`, {
          param: `messages[${index}].tool_call_id`,
        });
      return { role: 'tool', toolCallId: m.toolCallId, content: m.content };
    default:
      throw new AppError(
        'invalid_request',
        `messages[${index}].role must be system, user, assistant or tool`,
        { param: `messages[${index}].role` },
      );
  }
}

function parseSchema(json: string, index: number): JsonObject {
  if (json === '') return { type: 'object', properties: {} };
  try {
    const value: unknown = JSON.parse(json);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as JsonObject;
  } catch {
    // reported below
  }
  throw new AppError('invalid_request', `tools[${index}].parameters_json must be a JSON object`, {
    param: `tools[${index}].parameters_json`,
  });
}

/** The gRPC request in the gateway's canonical form, validated like the HTTP formats. */
export function decodeGrpcChatRequest(r: GrpcChatRequest, stream: boolean): ChatRequest {
  if (!r.model) throw new AppError('invalid_request', 'model is required', { param: 'model' });
  if (r.messages.length === 0)
    throw new AppError('invalid_request', 'messages must contain at least one message', {
      param: 'messages',
    });
  const request: ChatRequest = { model: r.model, messages: r.messages.map(decodeMessage), stream };
  if (r.maxTokens !== undefined && r.maxTokens !== null) {
    if (r.maxTokens <= 0)
      throw new AppError('invalid_request', 'max_tokens must be positive', { param: 'max_tokens' });
    request.maxTokens = r.maxTokens;
  }
  if (r.temperature !== undefined && r.temperature !== null) request.temperature = r.temperature;
  if (r.topP !== undefined && r.topP !== null) request.topP = r.topP;
  if (r.stop.length > 0) request.stop = r.stop;
  if (r.tools.length > 0) {
    request.tools = r.tools.map((t, i) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      parameters: parseSchema(t.parametersJson, i),
    }));
  }
  if (r.toolChoice) {
    request.toolChoice =
      r.toolChoice === 'auto' || r.toolChoice === 'none' || r.toolChoice === 'required'
        ? { type: r.toolChoice }
        : { type: 'tool', name: r.toolChoice };
  }
  if (r.responseFormat === 'json_object') request.responseFormat = { type: 'json_object' };
  else if (r.responseFormat && r.responseFormat !== 'text') {
    throw new AppError('invalid_request', 'response_format must be text or json_object', {
      param: 'response_format',
    });
  }
  return request;
}

export {
  AnthropicStreamEncoder,
  anthropicCaller,
  decodeAnthropicRequest,
  toAnthropicMessage,
} from './caller.js';
export {
  ANTHROPIC_DEFAULT_MAX_TOKENS,
  AnthropicStreamDecoder,
  anthropicProvider,
  decodeAnthropicError,
  decodeAnthropicResponse,
  encodeAnthropicRequest,
  JSON_OBJECT_INSTRUCTION,
} from './provider.js';
export type * from './wire.js';
export {
  fromAnthropicStopReason,
  fromAnthropicUsage,
  toAnthropicStopReason,
  toAnthropicUsage,
} from './wire.js';

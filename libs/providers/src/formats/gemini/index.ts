export {
  decodeGeminiRequest,
  type GeminiRoute,
  GeminiStreamEncoder,
  geminiCaller,
  parseGeminiPath,
  toGeminiResponse,
} from './caller.js';
export {
  decodeGeminiError,
  decodeGeminiResponse,
  encodeGeminiRequest,
  GeminiStreamDecoder,
  geminiProvider,
} from './provider.js';
export { geminiSchemaToJsonSchema } from './schema.js';
export { attachSignature, SKIP_SIGNATURE_VALIDATION, splitToolCallId } from './tool-ids.js';
export type * from './wire.js';
export { fromGeminiFinishReason, fromGeminiUsage, toGeminiFinishReason, toGeminiUsage } from './wire.js';

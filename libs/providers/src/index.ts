export { type Cancellation, LazyAbort, signalCancellation } from './cancellation.js';
export * from './canonical.js';
export {
  type ProviderClient,
  type ProviderEndpoint,
  type ProviderKind,
  UnsupportedRequest,
  type UpstreamCall,
  UpstreamFailure,
} from './client.js';
export type { CallerFormat, CallerHeaders, ProviderWire, StreamDecoder, StreamEncoder } from './codec.js';
export { anthropicCaller, anthropicProvider } from './formats/anthropic/index.js';
export {
  decodeGeminiRequest,
  geminiCaller,
  geminiProvider,
  parseGeminiPath,
} from './formats/gemini/index.js';
export * from './formats/openai/index.js';
export {
  countTokens,
  createLocalProvider,
  LOCAL_EMBEDDING_MODEL,
  LOCAL_MODEL,
} from './local/local-provider.js';
export { type LocalScript, readScript } from './local/script.js';
export { type HttpProviderSpec, httpProviders } from './registry.js';
export { type SseMessage, SseParser, sseFrame } from './sse.js';
export { createHttpProviderClient } from './transport/http-client.js';
export { parseRetryAfter } from './transport/retry-after.js';

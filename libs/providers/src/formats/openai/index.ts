export {
  decodeOpenAIChatRequest,
  decodeOpenAIEmbeddingsRequest,
  encodeOpenAIChatResponse,
  encodeOpenAIEmbeddingsResponse,
  encodeOpenAIUsage,
  openAICaller,
} from './caller.js';
export { createOpenAIWire, decodeOpenAIUsage, type OpenAIWireOptions } from './provider.js';

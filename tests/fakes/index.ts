import { ANTHROPIC_MODELS, ANTHROPIC_VERSIONS, createAnthropicRouter } from './anthropic.js';
import { createGeminiRouter, GEMINI_MODELS } from './gemini.js';
import { AZURE_API_VERSIONS, AZURE_DEPLOYMENTS, createOpenAIRouter, OPENAI_MODELS } from './openai.js';
import { type ProviderRouter, serve } from './server.js';
import type { FakeProvider, FakeProviderKind, FakeProviderOptions } from './types.js';

export type {
  FakeBehaviour,
  FakeDisconnectBehaviour,
  FakeErrorBehaviour,
  FakeFinish,
  FakeGarbageBehaviour,
  FakeHangBehaviour,
  FakeProvider,
  FakeProviderKind,
  FakeProviderOptions,
  FakeProviderStats,
  FakeReplyBehaviour,
  FakeReplyContent,
  FakeStreamErrorBehaviour,
  FakeThinkingBlock,
  FakeTiming,
  FakeToolCall,
  FakeUsage,
  RecordedRequest,
} from './types.js';
export {
  ANTHROPIC_MODELS,
  ANTHROPIC_VERSIONS,
  AZURE_API_VERSIONS,
  AZURE_DEPLOYMENTS,
  GEMINI_MODELS,
  OPENAI_MODELS,
};

/** The models (Azure: deployments) each fake serves unless `models` is given. */
export const DEFAULT_MODELS: Readonly<Record<FakeProviderKind, readonly string[]>> = {
  openai: OPENAI_MODELS,
  azure: AZURE_DEPLOYMENTS,
  anthropic: ANTHROPIC_MODELS,
  gemini: GEMINI_MODELS,
};

/**
 * Start a fake upstream speaking one provider's wire format on 127.0.0.1.
 * Point the official SDKs at it: OpenAI `baseURL: `${url}/v1``, AzureOpenAI `endpoint: url`,
 * Anthropic `baseURL: url`, GoogleGenAI `httpOptions: { baseUrl: url }`.
 */
export function startFakeProvider(options: FakeProviderOptions): Promise<FakeProvider> {
  const models = options.models ?? DEFAULT_MODELS[options.kind];
  let router: ProviderRouter;
  switch (options.kind) {
    case 'openai':
    case 'azure':
      router = createOpenAIRouter({
        flavour: options.kind,
        apiKey: options.apiKey,
        models,
        apiVersions: options.apiVersions ?? AZURE_API_VERSIONS,
      });
      break;
    case 'anthropic':
      router = createAnthropicRouter({ apiKey: options.apiKey, models });
      break;
    case 'gemini':
      router = createGeminiRouter({ apiKey: options.apiKey, models });
      break;
  }
  return serve({
    kind: options.kind,
    port: options.port ?? 0,
    host: options.host ?? '127.0.0.1',
    maxRecorded: options.maxRecorded ?? 200,
    router,
  });
}

import type { ChatRequest } from './canonical.js';
import type { ProviderEndpoint, ProviderKind } from './client.js';
import type { ProviderWire } from './codec.js';
import { anthropicProvider } from './formats/anthropic/index.js';
import { geminiProvider } from './formats/gemini/index.js';
import { createOpenAIWire } from './formats/openai/index.js';

/**
 * Everything that differs between HTTP providers, declared in one place: where to send a request,
 * how to authenticate, and which wire format to speak. Adding an OpenAI-like provider is one entry.
 */
export interface HttpProviderSpec {
  defaultBaseUrl?: string;
  chatUrl(base: string, endpoint: ProviderEndpoint, model: string, stream: boolean): string;
  embeddingsUrl?(base: string, endpoint: ProviderEndpoint, model: string): string;
  authHeaders(endpoint: ProviderEndpoint): Record<string, string>;
  /**
   * Headers a chat request carries for this provider only (Anthropic `anthropic-beta`). Nothing the
   * caller sent reaches a provider except through here, so its credentials never do.
   */
  chatHeaders?(request: ChatRequest): Record<string, string>;
  wire: ProviderWire;
}

const bearer = (e: ProviderEndpoint): Record<string, string> =>
  e.apiKey ? { authorization: `Bearer ${e.apiKey}` } : {};
const trim = (url: string): string => url.replace(/\/+$/, '');

const openAIStyle = (wire: ProviderWire, defaultBaseUrl?: string): HttpProviderSpec => ({
  ...(defaultBaseUrl ? { defaultBaseUrl } : {}),
  chatUrl: (base) => `${trim(base)}/chat/completions`,
  embeddingsUrl: (base) => `${trim(base)}/embeddings`,
  authHeaders: bearer,
  wire,
});

const azureUrl = (base: string, e: ProviderEndpoint, model: string, op: string): string =>
  `${trim(base)}/openai/deployments/${encodeURIComponent(model)}/${op}?api-version=${encodeURIComponent(e.apiVersion ?? '2024-10-21')}`;

export const httpProviders: Record<Exclude<ProviderKind, 'local'>, HttpProviderSpec> = {
  openai: openAIStyle(
    createOpenAIWire({ maxTokensField: 'max_completion_tokens' }),
    'https://api.openai.com/v1',
  ),
  'openai-compatible': openAIStyle(createOpenAIWire({ maxTokensField: 'max_tokens' })),
  azure: {
    chatUrl: (base, e, model) => azureUrl(base, e, model, 'chat/completions'),
    embeddingsUrl: (base, e, model) => azureUrl(base, e, model, 'embeddings'),
    authHeaders: (e): Record<string, string> => (e.apiKey ? { 'api-key': e.apiKey } : {}),
    wire: createOpenAIWire({ maxTokensField: 'max_completion_tokens' }),
  },
  anthropic: {
    defaultBaseUrl: 'https://api.anthropic.com',
    chatUrl: (base) => `${trim(base)}/v1/messages`,
    authHeaders: (e): Record<string, string> => ({
      ...(e.apiKey ? { 'x-api-key': e.apiKey } : {}),
      // The version the codec speaks; a caller's own anthropic-version is not passed on, since the body
      // the upstream gets is the gateway's re-encoding, not the caller's.
      'anthropic-version': '2023-06-01',
    }),
    chatHeaders: (request): Record<string, string> =>
      request.anthropicBetas && request.anthropicBetas.length > 0
        ? { 'anthropic-beta': request.anthropicBetas.join(',') }
        : {},
    wire: anthropicProvider,
  },
  gemini: {
    defaultBaseUrl: 'https://generativelanguage.googleapis.com',
    chatUrl: (base, _e, model, stream) =>
      `${trim(base)}/v1beta/models/${encodeURIComponent(model)}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
    embeddingsUrl: (base, _e, model) =>
      `${trim(base)}/v1beta/models/${encodeURIComponent(model)}:batchEmbedContents`,
    authHeaders: (e): Record<string, string> => (e.apiKey ? { 'x-goog-api-key': e.apiKey } : {}),
    wire: geminiProvider,
  },
};

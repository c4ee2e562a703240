/**
 * Gemini `generateContent` wire shapes FlowLoom writes (requests to Gemini, responses and SSE chunks to
 * Gemini clients), after https://ai.google.dev/api/generate-content and `@google/genai` types.
 * Type aliases, not interfaces, so they convert to `JsonObject`.
 */
import type { FinishReason, JsonObject, Usage } from '../../canonical.js';

export type GeminiPart = {
  text?: string;
  thought?: boolean;
  thoughtSignature?: string;
  inlineData?: { mimeType: string; data: string };
  fileData?: { fileUri: string; mimeType?: string };
  functionCall?: { id?: string; name: string; args: JsonObject };
  functionResponse?: { id?: string; name: string; response: JsonObject };
};

export type GeminiContent = { role: 'user' | 'model'; parts: GeminiPart[] };

export type GeminiFunctionCallingMode = 'AUTO' | 'ANY' | 'NONE' | 'VALIDATED';

export type GeminiRequest = {
  contents: GeminiContent[];
  systemInstruction?: { parts: { text: string }[] };
  tools?: {
    functionDeclarations: { name: string; description?: string; parametersJsonSchema: JsonObject }[];
  }[];
  toolConfig?: {
    functionCallingConfig: { mode: GeminiFunctionCallingMode; allowedFunctionNames?: string[] };
  };
  generationConfig?: {
    maxOutputTokens?: number;
    temperature?: number;
    topP?: number;
    stopSequences?: string[];
    seed?: number;
    responseMimeType?: string;
    responseJsonSchema?: JsonObject;
    thinkingConfig?: GeminiThinkingConfig;
  };
};

export type GeminiThinkingLevel = 'MINIMAL' | 'LOW' | 'MEDIUM' | 'HIGH';
export type GeminiThinkingConfig = { thinkingBudget: number } | { thinkingLevel: GeminiThinkingLevel };

export type GeminiUsageMetadata = {
  promptTokenCount: number;
  candidatesTokenCount: number;
  totalTokenCount: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
};

export type GeminiFinishReason =
  | 'STOP'
  | 'MAX_TOKENS'
  | 'SAFETY'
  | 'RECITATION'
  | 'OTHER'
  | 'MALFORMED_FUNCTION_CALL';

export type GeminiResponse = {
  candidates: {
    content: { role: 'model'; parts: GeminiPart[] };
    finishReason?: GeminiFinishReason;
    index: number;
  }[];
  usageMetadata?: GeminiUsageMetadata;
  modelVersion: string;
  responseId: string;
};

export type GeminiErrorBody = { error: { code: number; message: string; status: string } };

/** The usage counters as Gemini reports them; all optional on the wire. */
export interface GeminiUsageCounters {
  promptTokenCount?: number | undefined;
  candidatesTokenCount?: number | undefined;
  cachedContentTokenCount?: number | undefined;
  thoughtsTokenCount?: number | undefined;
  toolUsePromptTokenCount?: number | undefined;
}

/**
 * `promptTokenCount` already includes the cached part (`cachedContentTokenCount`); thinking tokens
 * (`thoughtsTokenCount`) are billed as output but not counted in `candidatesTokenCount`; tool-use
 * prompt tokens (search, code execution) are billed as input but not counted in `promptTokenCount`.
 */
export function fromGeminiUsage(usage: GeminiUsageCounters): Usage {
  return {
    inputTokens: (usage.promptTokenCount ?? 0) + (usage.toolUsePromptTokenCount ?? 0),
    outputTokens: (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0),
    cachedInputTokens: usage.cachedContentTokenCount ?? 0,
    ...(usage.thoughtsTokenCount !== undefined ? { reasoningTokens: usage.thoughtsTokenCount } : {}),
  };
}

/**
 * Canonical output includes reasoning; when its share is known it is reported apart, as Gemini does,
 * otherwise it stays inside `candidatesTokenCount`.
 */
export function toGeminiUsage(usage: Usage): GeminiUsageMetadata {
  const thoughts = Math.min(usage.reasoningTokens ?? 0, usage.outputTokens);
  return {
    promptTokenCount: usage.inputTokens,
    candidatesTokenCount: usage.outputTokens - thoughts,
    totalTokenCount: usage.inputTokens + usage.outputTokens,
    ...(usage.cachedInputTokens > 0 ? { cachedContentTokenCount: usage.cachedInputTokens } : {}),
    ...(usage.reasoningTokens !== undefined ? { thoughtsTokenCount: thoughts } : {}),
  };
}

export function fromGeminiFinishReason(reason: string, hasToolCalls: boolean): FinishReason {
  switch (reason) {
    case 'STOP':
      // Gemini ends a function-calling turn with STOP; canonical callers expect tool_calls.
      return hasToolCalls ? 'tool_calls' : 'stop';
    case 'MAX_TOKENS':
      return 'length';
    case 'SAFETY':
    case 'RECITATION':
    case 'BLOCKLIST':
    case 'PROHIBITED_CONTENT':
    case 'SPII':
    case 'IMAGE_SAFETY':
    case 'IMAGE_PROHIBITED_CONTENT':
    case 'IMAGE_RECITATION':
      return 'content_filter';
    case 'MALFORMED_FUNCTION_CALL':
    case 'UNEXPECTED_TOOL_CALL':
    case 'TOO_MANY_TOOL_CALLS':
    case 'LANGUAGE':
    case 'OTHER':
    case 'NO_IMAGE':
    case 'IMAGE_OTHER':
      return 'error';
    default:
      // FINISH_REASON_UNSPECIFIED, CONTINUATION and anything newer.
      return hasToolCalls ? 'tool_calls' : 'stop';
  }
}

export function toGeminiFinishReason(reason: FinishReason): GeminiFinishReason {
  switch (reason) {
    case 'stop':
    case 'tool_calls':
      return 'STOP';
    case 'length':
      return 'MAX_TOKENS';
    case 'content_filter':
      return 'SAFETY';
    case 'error':
      return 'OTHER';
  }
}

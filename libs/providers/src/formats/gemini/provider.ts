/**
 * Gemini `generateContent` as an upstream. The model travels in the URL
 * (`/v1beta/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse`), so the body has none.
 */
import { AppError } from '@flowloom/errors';
import { z } from 'zod';
import type {
  ChatRequest,
  ChatResponse,
  ContentPart,
  JsonObject,
  ReasoningConfig,
  ReasoningEffort,
  StreamEvent,
  ToolCall,
} from '../../canonical.js';
import type { ProviderWire, StreamDecoder } from '../../codec.js';
import { reasoningBudget, reasoningDisabled } from '../../reasoning.js';
import type { SseMessage } from '../../sse.js';
import { argumentsToObject, isJsonObject, jsonObject, parseDataUrl, toJsonObject } from '../../validation.js';
import {
  attachSignature,
  isGemini3OrLater,
  requiresThoughtSignatures,
  SKIP_SIGNATURE_VALIDATION,
  splitToolCallId,
  stableHash,
  synthesizeToolCallId,
} from './tool-ids.js';
import {
  fromGeminiFinishReason,
  fromGeminiUsage,
  type GeminiContent,
  type GeminiFunctionCallingMode,
  type GeminiPart,
  type GeminiRequest,
  type GeminiThinkingConfig,
  type GeminiThinkingLevel,
} from './wire.js';

export function encodeGeminiRequest(request: ChatRequest, model: string): GeminiRequest {
  const system: { text: string }[] = [];
  const contents: GeminiContent[] = [];
  const callNames = new Map<string, string>();
  // Gemini wants the responses to one turn's calls together in one user content, so same-role
  // neighbours are merged.
  const append = (role: 'user' | 'model', parts: GeminiPart[]): void => {
    if (parts.length === 0) return;
    const last = contents.at(-1);
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };

  request.messages.forEach((message, index) => {
    switch (message.role) {
      case 'system':
        if (message.content !== '') system.push({ text: message.content });
        break;
      case 'user':
        append('user', message.content.flatMap(encodePart));
        break;
      case 'assistant': {
        const parts: GeminiPart[] = [];
        if (message.content) parts.push({ text: message.content });
        for (const call of message.toolCalls ?? []) {
          callNames.set(call.id, call.name);
          const { signature } = splitToolCallId(call.id);
          // Ids are not sent: Gemini pairs responses with calls by name and order.
          parts.push({
            functionCall: { name: call.name, args: argumentsToObject(call.arguments) },
            ...(signature !== undefined ? { thoughtSignature: signature } : {}),
          });
        }
        append('model', parts);
        break;
      }
      case 'tool': {
        const name = callNames.get(message.toolCallId);
        if (name === undefined) {
          throw new AppError(
            'invalid_request',
            `messages.${index}: the tool result refers to tool call "${message.toolCallId}", which no earlier assistant message made`,
            { param: `messages.${index}` },
          );
        }
        append('user', [
          { functionResponse: { name, response: functionResponseBody(message.content, message.isError) } },
        ]);
        break;
      }
    }
  });
  if (requiresThoughtSignatures(model)) addMissingSignatures(contents);

  const tools = request.tools ?? [];
  const config: NonNullable<GeminiRequest['generationConfig']> = {
    ...(request.maxTokens !== undefined ? { maxOutputTokens: request.maxTokens } : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.topP !== undefined ? { topP: request.topP } : {}),
    ...(request.stop && request.stop.length > 0 ? { stopSequences: request.stop } : {}),
    ...(request.seed !== undefined ? { seed: request.seed } : {}),
    ...(request.responseFormat?.type === 'json_object' ? { responseMimeType: 'application/json' } : {}),
    ...(request.responseFormat?.type === 'json_schema'
      ? { responseMimeType: 'application/json', responseJsonSchema: request.responseFormat.schema }
      : {}),
  };
  const thinkingConfig = request.reasoning ? encodeThinkingConfig(request.reasoning, model) : undefined;
  if (thinkingConfig) config.thinkingConfig = thinkingConfig;
  const choice = tools.length > 0 ? encodeToolChoice(request.toolChoice) : undefined;

  return {
    contents,
    ...(system.length > 0 ? { systemInstruction: { parts: system } } : {}),
    ...(tools.length > 0
      ? {
          tools: [
            {
              // JSON Schema goes in as is; the OpenAPI-subset `parameters` field would reject much of it.
              functionDeclarations: tools.map((tool) => ({
                name: tool.name,
                ...(tool.description !== undefined ? { description: tool.description } : {}),
                parametersJsonSchema: tool.parameters,
              })),
            },
          ],
        }
      : {}),
    ...(choice ? { toolConfig: { functionCallingConfig: choice } } : {}),
    ...(Object.keys(config).length > 0 ? { generationConfig: config } : {}),
  };
}

/**
 * Canonical reasoning → `thinkingConfig`, after Google's documented translation of OpenAI's
 * `reasoning_effort` (reasoning.ts). Gemini 3 takes efforts natively as `thinkingLevel` and cannot
 * switch thinking off, so "off" becomes its lowest level there; Gemini 2.x takes budgets, with 0 for
 * off and -1 for dynamic. Budgets go as budgets to both (Gemini 3 still accepts `thinkingBudget`).
 */
function encodeThinkingConfig(config: ReasoningConfig, model: string): GeminiThinkingConfig | undefined {
  // Gemini 1.x and 2.0 do not think; a thinking hint from another format is dropped, not an error.
  if (/^(models\/)?gemini-(1|2\.0)([.-]|$)/.test(model)) return undefined;
  const levels = isGemini3OrLater(model);
  if (reasoningDisabled(config)) return levels ? { thinkingLevel: 'MINIMAL' } : { thinkingBudget: 0 };
  switch (config.type) {
    case 'adaptive':
      // Dynamic thinking is Gemini 3's default; on 2.x it is asked for with -1.
      return levels ? undefined : { thinkingBudget: -1 };
    case 'budget':
      return { thinkingBudget: config.budgetTokens };
    case 'effort':
      if (levels) return { thinkingLevel: GEMINI_LEVEL[config.effort] };
      return { thinkingBudget: reasoningBudget(config) ?? 0 };
    case 'disabled':
      return undefined;
  }
}

const GEMINI_LEVEL: Readonly<Record<ReasoningEffort, GeminiThinkingLevel>> = {
  none: 'MINIMAL',
  minimal: 'MINIMAL',
  low: 'LOW',
  medium: 'MEDIUM',
  high: 'HIGH',
  xhigh: 'HIGH',
  max: 'HIGH',
};

function encodePart(part: ContentPart): GeminiPart[] {
  if (part.type === 'text') return part.text === '' ? [] : [{ text: part.text }];
  const data = parseDataUrl(part.url);
  if (data) return [{ inlineData: { mimeType: data.mediaType, data: data.data } }];
  return [{ fileData: { fileUri: part.url, ...(part.mediaType ? { mimeType: part.mediaType } : {}) } }];
}

/**
 * `FunctionResponse.response` must be an object: a JSON object result is sent as is; anything else is
 * wrapped as `{ output }`, or `{ error }` for a failed call, the keys Google documents for it.
 */
function functionResponseBody(content: string, isError: boolean | undefined): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    parsed = undefined;
  }
  if (isJsonObject(parsed) && isError !== true) return parsed;
  return isError === true ? { error: content } : { output: content };
}

/** A model turn whose calls came from elsewhere has no signature; Gemini 3 rejects it without one. */
function addMissingSignatures(contents: GeminiContent[]): void {
  for (const content of contents) {
    if (content.role !== 'model') continue;
    const calls = content.parts.filter((part) => part.functionCall !== undefined);
    const first = calls[0];
    if (first && !calls.some((part) => part.thoughtSignature !== undefined)) {
      first.thoughtSignature = SKIP_SIGNATURE_VALIDATION;
    }
  }
}

function encodeToolChoice(
  choice: ChatRequest['toolChoice'],
): { mode: GeminiFunctionCallingMode; allowedFunctionNames?: string[] } | undefined {
  switch (choice?.type) {
    case undefined:
      return undefined;
    case 'auto':
      return { mode: 'AUTO' };
    case 'none':
      return { mode: 'NONE' };
    case 'required':
      return { mode: 'ANY' };
    case 'tool':
      return { mode: 'ANY', allowedFunctionNames: [choice.name] };
  }
}

const usageSchema = z
  .object({
    promptTokenCount: z.number().optional(),
    candidatesTokenCount: z.number().optional(),
    cachedContentTokenCount: z.number().optional(),
    thoughtsTokenCount: z.number().optional(),
    toolUsePromptTokenCount: z.number().optional(),
  })
  .optional();

const partSchema = z
  .object({
    text: z.string().optional(),
    thought: z.boolean().optional(),
    thoughtSignature: z.string().optional(),
    functionCall: z
      .object({ id: z.string().optional(), name: z.string(), args: jsonObject.optional() })
      .optional(),
  })
  .loose();

const responseSchema = z.object({
  candidates: z
    .array(
      z.object({
        content: z
          .object({ parts: z.array(partSchema).optional() })
          .loose()
          .optional(),
        finishReason: z.string().optional(),
      }),
    )
    .optional(),
  promptFeedback: z.object({ blockReason: z.string().optional() }).loose().optional(),
  usageMetadata: usageSchema,
  modelVersion: z.string().optional(),
  responseId: z.string().optional(),
});

type GeminiResponseBody = z.infer<typeof responseSchema>;
type ResponsePart = z.infer<typeof partSchema>;

function parseResponse(body: unknown, what: string): GeminiResponseBody {
  const parsed = responseSchema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  throw new AppError('upstream_bad_response', `Gemini sent a malformed ${what}${where}.`);
}

function toolCallFrom(part: ResponsePart, seed: string, index: number): ToolCall | undefined {
  const call = part.functionCall;
  if (!call) return undefined;
  const id = attachSignature(call.id ?? synthesizeToolCallId(seed, index), part.thoughtSignature);
  return { id, name: call.name, arguments: JSON.stringify(call.args ?? {}) };
}

/** Response ids make tool-call ids unique across turns; without one, a hash of the content stands in. */
function idSeed(body: GeminiResponseBody, parts: ResponsePart[]): string {
  return body.responseId ?? stableHash(JSON.stringify(parts));
}

export function decodeGeminiResponse(body: unknown): ChatResponse {
  const response = parseResponse(body, 'response');
  const candidate = response.candidates?.[0];
  const parts = candidate?.content?.parts ?? [];
  const seed = idSeed(response, parts);
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  for (const part of parts) {
    if (part.thought === true) continue;
    const call = toolCallFrom(part, seed, toolCalls.length);
    if (call) toolCalls.push(call);
    else if (part.text !== undefined) texts.push(part.text);
  }
  // A blocked prompt has no candidates at all, only promptFeedback.blockReason.
  const finishReason = candidate
    ? fromGeminiFinishReason(candidate.finishReason ?? 'STOP', toolCalls.length > 0)
    : response.promptFeedback?.blockReason
      ? 'content_filter'
      : 'error';
  return {
    id: response.responseId ?? `gemini-${seed}`,
    model: response.modelVersion ?? '',
    created: Math.floor(Date.now() / 1000),
    content: texts.length > 0 ? texts.join('') : null,
    toolCalls,
    finishReason,
    usage: fromGeminiUsage(response.usageMetadata ?? {}),
  };
}

const streamErrorSchema = z.object({
  error: z.object({ code: z.number().optional(), message: z.string(), status: z.string().optional() }),
});

/**
 * Each SSE message is a whole GenerateContentResponse with only what is new. Function calls arrive whole,
 * so each becomes a tool_call_start and one tool_call_delta. Usage comes with the last chunk (earlier
 * chunks may hold partial counts; later values win).
 */
export class GeminiStreamDecoder implements StreamDecoder {
  private started = false;
  private toolCount = 0;
  private finished = false;
  private sawUsage = false;

  get done(): boolean {
    return this.finished && this.sawUsage;
  }

  push(message: SseMessage): StreamEvent[] {
    if (message.data === '' || message.data === '[DONE]') return [];
    let data: unknown;
    try {
      data = JSON.parse(message.data);
    } catch {
      throw new AppError('upstream_bad_response', 'Gemini sent an SSE chunk that is not JSON.');
    }
    const failure = streamErrorSchema.safeParse(data);
    if (failure.success) {
      const { status, message: text } = failure.data.error;
      throw new AppError('upstream_error', `Gemini stream error${status ? ` (${status})` : ''}: ${text}`, {
        ...(status ? { details: { upstreamType: status } } : {}),
      });
    }
    const chunk = parseResponse(data, 'stream chunk');
    const events: StreamEvent[] = [];
    if (!this.started) {
      this.started = true;
      events.push({
        type: 'start',
        id: chunk.responseId ?? `gemini-${stableHash(message.data)}`,
        model: chunk.modelVersion ?? '',
        created: Math.floor(Date.now() / 1000),
      });
    }
    const candidate = chunk.candidates?.[0];
    const parts = candidate?.content?.parts ?? [];
    for (const part of parts) {
      if (part.thought === true) continue;
      const call = toolCallFrom(part, chunk.responseId ?? stableHash(JSON.stringify(part)), this.toolCount);
      if (call) {
        const index = this.toolCount++;
        events.push({ type: 'tool_call_start', index, id: call.id, name: call.name });
        events.push({ type: 'tool_call_delta', index, argumentsDelta: call.arguments });
      } else if (part.text) events.push({ type: 'text', delta: part.text });
    }
    if (candidate?.finishReason && !this.finished) {
      this.finished = true;
      events.push({
        type: 'finish',
        finishReason: fromGeminiFinishReason(candidate.finishReason, this.toolCount > 0),
      });
    } else if (!candidate && chunk.promptFeedback?.blockReason && !this.finished) {
      this.finished = true;
      events.push({ type: 'finish', finishReason: 'content_filter' });
    }
    if (chunk.usageMetadata) {
      this.sawUsage = true;
      events.push({ type: 'usage', usage: fromGeminiUsage(chunk.usageMetadata) });
    }
    return events;
  }
}

const errorBodySchema = z.object({
  error: z.object({ code: z.number().optional(), message: z.string(), status: z.string().optional() }),
});

const STATUS_BY_HTTP: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** Reads `{error:{code,message,status}}` (also inside the one-element array some endpoints answer with). */
export function decodeGeminiError(status: number, body: unknown): { message: string; type: string } {
  const candidate = Array.isArray(body) ? body[0] : body;
  const parsed = errorBodySchema.safeParse(candidate);
  const fallbackType = STATUS_BY_HTTP[status] ?? (status >= 500 ? 'INTERNAL' : 'UNKNOWN');
  if (parsed.success) {
    return { message: parsed.data.error.message, type: parsed.data.error.status ?? fallbackType };
  }
  const text = typeof body === 'string' ? body.trim().slice(0, 500) : '';
  return { message: text === '' ? `Gemini returned HTTP ${status}.` : text, type: fallbackType };
}

export const geminiProvider: ProviderWire = {
  encodeChatRequest: (request, model) => toJsonObject(encodeGeminiRequest(request, model)),
  decodeChatResponse: decodeGeminiResponse,
  createStreamDecoder: () => new GeminiStreamDecoder(),
  decodeError: decodeGeminiError,
};

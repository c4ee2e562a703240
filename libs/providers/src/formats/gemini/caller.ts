/**
 * Gemini `generateContent` as a caller format: what `@google/genai` sends to
 * `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`, and the
 * `GenerateContentResponse` objects (whole, or one per SSE chunk) it expects back.
 *
 * The model and whether to stream come from the URL, not the body. The HTTP layer calls
 * `decodeGeminiRequest(body, { model, stream })` with what `parseGeminiPath` read from the path.
 * `geminiCaller.decodeChatRequest(body)` takes them from the body instead: `model` is
 * `GenerateContentRequest.model` of Google's own proto (`models/` prefix optional), and `stream` is a
 * FlowLoom-private boolean (default false).
 */
import { AppError } from '@flowloom/errors';
import { z } from 'zod';
import type {
  ChatRequest,
  ChatResponse,
  ContentPart,
  JsonObject,
  Message,
  ReasoningConfig,
  ResponseFormat,
  StreamEvent,
  ToolCall,
  ToolChoice,
  Usage,
} from '../../canonical.js';
import { mergeUsage } from '../../canonical.js';
import type { CallerFormat, StreamEncoder } from '../../codec.js';
import { sseFrame } from '../../sse.js';
import {
  argumentsToObject,
  invalidField,
  isJsonObject,
  parseRequest,
  toJsonObject,
} from '../../validation.js';
import { type GeminiRequestBody, type GeminiRequestPart, geminiRequestSchema } from './request-schema.js';
import { geminiSchemaToJsonSchema } from './schema.js';
import { attachSignature, splitToolCallId, synthesizeToolCallId } from './tool-ids.js';
import {
  type GeminiErrorBody,
  type GeminiPart,
  type GeminiResponse,
  toGeminiFinishReason,
  toGeminiUsage,
} from './wire.js';

export interface GeminiRoute {
  /** The model from the path, with or without the `models/` prefix. */
  model: string;
  /** True for `:streamGenerateContent`. */
  stream: boolean;
}

/** `/v1beta/models/gemini-2.5-flash:streamGenerateContent` → `{ model, stream: true }`. */
export function parseGeminiPath(pathname: string): GeminiRoute | undefined {
  const match = /\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(pathname);
  if (!match?.[1]) return undefined;
  let model: string;
  try {
    model = decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
  return { model, stream: match[2] === 'streamGenerateContent' };
}

export function decodeGeminiRequest(body: unknown, route: GeminiRoute): ChatRequest {
  const model = route.model.replace(/^models\//, '');
  if (model === '') throw invalidField('model', 'Field required');
  const request = parseRequest(geminiRequestSchema, body);

  const messages: Message[] = [];
  for (const part of request.systemInstruction?.parts ?? []) {
    if (part.text !== '') messages.push({ role: 'system', content: part.text });
  }
  const calls = new CallLedger();
  request.contents.forEach((content, index) => {
    if (content.role === 'model') messages.push(...decodeModelContent(content.parts, index, calls));
    else messages.push(...decodeUserContent(content.parts, index, calls));
  });

  const config = request.generationConfig;
  const responseFormat = decodeResponseFormat(config);
  const declarations = (request.tools ?? []).flatMap((tool) => tool.functionDeclarations ?? []);
  const toolChoice = decodeToolChoice(request.toolConfig?.functionCallingConfig);
  const reasoning = decodeThinkingConfig(config?.thinkingConfig);
  return {
    model,
    messages,
    stream: route.stream,
    // Gemini streams always end with usageMetadata.
    ...(route.stream ? { includeUsage: true } : {}),
    ...(config?.maxOutputTokens !== undefined ? { maxTokens: config.maxOutputTokens } : {}),
    ...(config?.temperature !== undefined ? { temperature: config.temperature } : {}),
    ...(config?.topP !== undefined ? { topP: config.topP } : {}),
    ...(config?.stopSequences && config.stopSequences.length > 0 ? { stop: config.stopSequences } : {}),
    ...(config?.seed !== undefined ? { seed: config.seed } : {}),
    ...(responseFormat ? { responseFormat } : {}),
    ...(declarations.length > 0
      ? {
          tools: declarations.map((declaration) => ({
            name: declaration.name,
            ...(declaration.description !== undefined ? { description: declaration.description } : {}),
            parameters:
              declaration.parametersJsonSchema ??
              (declaration.parameters
                ? geminiSchemaToJsonSchema(declaration.parameters)
                : { type: 'object' }),
          })),
        }
      : {}),
    ...(toolChoice ? { toolChoice } : {}),
    ...(reasoning ? { reasoning } : {}),
  };
}

/** `thinkingBudget` 0 is off and -1 dynamic (the model decides); `thinkingLevel` is an effort. */
function decodeThinkingConfig(
  config: NonNullable<GeminiRequestBody['generationConfig']>['thinkingConfig'],
): ReasoningConfig | undefined {
  if (config?.thinkingLevel !== undefined && config.thinkingLevel !== 'THINKING_LEVEL_UNSPECIFIED') {
    const effort = config.thinkingLevel.toLowerCase();
    return effort === 'minimal' || effort === 'low' || effort === 'medium' || effort === 'high'
      ? { type: 'effort', effort }
      : undefined;
  }
  const budget = config?.thinkingBudget;
  if (budget === undefined) return undefined;
  if (budget === 0) return { type: 'disabled' };
  return budget === -1 ? { type: 'adaptive' } : { type: 'budget', budgetTokens: budget };
}

/**
 * Function calls in the history get canonical ids (the call's own id, or one from its position, so the
 * same history always yields the same ids); function responses are matched to them by id when the client
 * sent one, else by name, oldest unanswered call first.
 */
class CallLedger {
  private pending: { id: string; bareId: string; name: string }[] = [];

  add(id: string, name: string): void {
    this.pending.push({ id, bareId: splitToolCallId(id).id, name });
  }

  /** A new model turn starts a new round of calls; unanswered older ones can no longer be answered. */
  newTurn(): void {
    this.pending = [];
  }

  take(name: string, id: string | undefined): string | undefined {
    let position =
      id === undefined ? -1 : this.pending.findIndex((call) => call.bareId === id || call.id === id);
    if (position === -1) position = this.pending.findIndex((call) => call.name === name);
    const call = this.pending[position];
    if (!call) return undefined;
    this.pending.splice(position, 1);
    return call.id;
  }
}

function decodeModelContent(parts: GeminiRequestPart[], contentIndex: number, calls: CallLedger): Message[] {
  calls.newTurn();
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  parts.forEach((part, partIndex) => {
    if (part.text !== undefined && part.thought !== true) texts.push(part.text);
    else if (part.functionCall) {
      const base = part.functionCall.id ?? synthesizeToolCallId(`h${contentIndex}`, partIndex);
      const id = attachSignature(base, part.thoughtSignature);
      calls.add(id, part.functionCall.name);
      toolCalls.push({
        id,
        name: part.functionCall.name,
        arguments: JSON.stringify(part.functionCall.args ?? {}),
      });
    } else if (part.inlineData || part.fileData) {
      throw invalidField(`contents.${contentIndex}.parts.${partIndex}`, 'model turns may not hold media');
    } else if (part.functionResponse) {
      throw invalidField(
        `contents.${contentIndex}.parts.${partIndex}.functionResponse`,
        'function responses belong in a user turn',
      );
    }
  });
  if (texts.length === 0 && toolCalls.length === 0) return [];
  return [
    {
      role: 'assistant',
      content: texts.length > 0 ? texts.join('') : null,
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
    },
  ];
}

function decodeUserContent(parts: GeminiRequestPart[], contentIndex: number, calls: CallLedger): Message[] {
  const out: Message[] = [];
  let pending: ContentPart[] = [];
  const flush = (): void => {
    if (pending.length > 0) out.push({ role: 'user', content: pending });
    pending = [];
  };
  parts.forEach((part, partIndex) => {
    const param = `contents.${contentIndex}.parts.${partIndex}`;
    if (part.text !== undefined) {
      if (part.thought !== true) pending.push({ type: 'text', text: part.text });
    } else if (part.inlineData) {
      const mediaType = part.inlineData.mimeType.toLowerCase();
      if (!mediaType.startsWith('image/')) {
        throw invalidField(
          `${param}.inlineData.mimeType`,
          `only images are supported through FlowLoom, got ${mediaType}`,
        );
      }
      pending.push({ type: 'image', url: `data:${mediaType};base64,${part.inlineData.data}`, mediaType });
    } else if (part.fileData) {
      const mediaType = part.fileData.mimeType?.toLowerCase();
      if (mediaType !== undefined && !mediaType.startsWith('image/')) {
        throw invalidField(
          `${param}.fileData.mimeType`,
          `only images are supported through FlowLoom, got ${mediaType}`,
        );
      }
      if (!/^https:\/\//.test(part.fileData.fileUri)) {
        throw invalidField(`${param}.fileData.fileUri`, 'must be an https URL');
      }
      pending.push({ type: 'image', url: part.fileData.fileUri, ...(mediaType ? { mediaType } : {}) });
    } else if (part.functionResponse) {
      flush();
      const response = part.functionResponse;
      const toolCallId = calls.take(response.name, response.id);
      if (toolCallId === undefined) {
        throw invalidField(
          `${param}.functionResponse.name`,
          `no unanswered functionCall named "${response.name}" in the preceding model turn`,
        );
      }
      out.push({ role: 'tool', toolCallId, content: JSON.stringify(response.response ?? {}) });
    } else if (part.functionCall) {
      throw invalidField(`${param}.functionCall`, 'function calls belong in a model turn');
    }
  });
  flush();
  return out;
}

function decodeResponseFormat(config: GeminiRequestBody['generationConfig']): ResponseFormat | undefined {
  if (config?.responseMimeType !== 'application/json') {
    if (config?.responseSchema !== undefined || config?.responseJsonSchema !== undefined) {
      throw invalidField('generationConfig.responseMimeType', 'a response schema requires application/json');
    }
    return undefined;
  }
  if (config.responseJsonSchema !== undefined) {
    const schema = config.responseJsonSchema;
    if (!isJsonObject(schema)) {
      throw invalidField('generationConfig.responseJsonSchema', 'must be a JSON Schema object');
    }
    return { type: 'json_schema', name: 'response', schema };
  }
  if (config.responseSchema !== undefined) {
    return { type: 'json_schema', name: 'response', schema: geminiSchemaToJsonSchema(config.responseSchema) };
  }
  return { type: 'json_object' };
}

function decodeToolChoice(
  config: NonNullable<GeminiRequestBody['toolConfig']>['functionCallingConfig'],
): ToolChoice | undefined {
  switch (config?.mode) {
    case undefined:
    case 'MODE_UNSPECIFIED':
      return undefined;
    case 'AUTO':
    case 'VALIDATED':
      return { type: 'auto' };
    case 'NONE':
      return { type: 'none' };
    case 'ANY': {
      const names = config.allowedFunctionNames ?? [];
      // Several allowed names have no canonical form; "any tool" is the closest.
      const only = names.length === 1 ? names[0] : undefined;
      return only !== undefined ? { type: 'tool', name: only } : { type: 'required' };
    }
  }
}

function toGeminiParts(content: string | null, toolCalls: ToolCall[]): GeminiPart[] {
  const parts: GeminiPart[] = [];
  if (content !== null && content !== '') parts.push({ text: content });
  for (const call of toolCalls) parts.push(functionCallPart(call.id, call.name, call.arguments));
  // Every chunk needs a non-empty part list, or @google/genai's chat drops the turn from its history.
  if (parts.length === 0) parts.push({ text: '' });
  return parts;
}

function functionCallPart(canonicalId: string, name: string, args: string): GeminiPart {
  const { id, signature } = splitToolCallId(canonicalId);
  return {
    functionCall: { id, name, args: argumentsToObject(args) },
    ...(signature !== undefined ? { thoughtSignature: signature } : {}),
  };
}

export function toGeminiResponse(response: ChatResponse, model: string): GeminiResponse {
  return {
    candidates: [
      {
        content: { role: 'model', parts: toGeminiParts(response.content, response.toolCalls) },
        finishReason: toGeminiFinishReason(response.finishReason),
        index: 0,
      },
    ],
    usageMetadata: toGeminiUsage(response.usage),
    modelVersion: model,
    responseId: response.id,
  };
}

/**
 * Gemini SSE: every `data:` frame is a whole GenerateContentResponse holding only what is new. Text goes
 * out as it comes; function calls go out whole (Gemini never streams arguments), so they are collected
 * and written with the last chunk, which also carries finishReason and usageMetadata.
 */
export class GeminiStreamEncoder implements StreamEncoder {
  private responseId: string | undefined;
  private calls: { id: string; name: string; arguments: string }[] = [];
  private readonly callByIndex = new Map<number, { id: string; name: string; arguments: string }>();
  private finishReason: ChatResponse['finishReason'] | undefined;
  private usage: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 };

  constructor(private readonly model: string) {}

  encode(event: StreamEvent): string {
    switch (event.type) {
      case 'start':
        this.responseId ??= event.id;
        return '';
      case 'usage':
        this.usage = mergeUsage(this.usage, event.usage);
        return '';
      case 'text':
        if (event.delta === '') return '';
        // Calls collected so far go first, to keep the model's order.
        return this.flushCalls() + this.chunk([{ text: event.delta }]);
      case 'tool_call_start': {
        const call = { id: event.id, name: event.name, arguments: '' };
        this.calls.push(call);
        this.callByIndex.set(event.index, call);
        return '';
      }
      case 'tool_call_delta': {
        const call = this.callByIndex.get(event.index);
        if (call) call.arguments += event.argumentsDelta;
        return '';
      }
      case 'finish':
        this.finishReason = event.finishReason;
        return '';
      // Another provider's thinking is not replayed as Gemini thought parts: Gemini callers see its token
      // count (thoughtsTokenCount), and Anthropic's signed blocks mean nothing to a Gemini client.
      case 'reasoning':
      case 'reasoning_signature':
      case 'reasoning_redacted':
        return '';
    }
  }

  end(usage: Usage): string {
    this.usage = usage;
    const parts = this.calls.map((call) => functionCallPart(call.id, call.name, call.arguments));
    this.calls = [];
    return this.chunk(
      parts.length > 0 ? parts : [{ text: '' }],
      toGeminiFinishReason(this.finishReason ?? 'stop'),
    );
  }

  error(message: string, type: string): string {
    // @google/genai raises an ApiError for a chunk holding `error` with a 4xx/5xx code.
    const body: GeminiErrorBody = { error: { code: codeForStatus(type), message, status: type } };
    return sseFrame(JSON.stringify(toJsonObject(body)));
  }

  private flushCalls(): string {
    if (this.calls.length === 0) return '';
    const parts = this.calls.map((call) => functionCallPart(call.id, call.name, call.arguments));
    this.calls = [];
    return this.chunk(parts);
  }

  private chunk(parts: GeminiPart[], finishReason?: ReturnType<typeof toGeminiFinishReason>): string {
    const response: GeminiResponse = {
      candidates: [
        { content: { role: 'model', parts }, index: 0, ...(finishReason ? { finishReason } : {}) },
      ],
      ...(finishReason ? { usageMetadata: toGeminiUsage(this.usage) } : {}),
      modelVersion: this.model,
      responseId: this.responseId ?? '',
    };
    return sseFrame(JSON.stringify(toJsonObject(response)));
  }
}

const HTTP_BY_STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

/** `type` is a google.rpc status name (as `toGeminiError` produces); the code follows from it. */
function codeForStatus(status: string): number {
  return HTTP_BY_STATUS[status] ?? 500;
}

const routedBody = z.looseObject({ model: z.string().min(1), stream: z.boolean().optional() });

export const geminiCaller: CallerFormat = {
  name: 'gemini',
  decodeChatRequest(body: unknown): ChatRequest {
    const route = routedBody.safeParse(body);
    if (!route.success) {
      throw new AppError('invalid_request', 'model: Field required (the model named in the request path)', {
        param: 'model',
      });
    }
    const { model, stream, ...rest } = route.data;
    return decodeGeminiRequest(rest, { model, stream: stream ?? false });
  },
  encodeChatResponse: (response, model): JsonObject => toJsonObject(toGeminiResponse(response, model)),
  createStreamEncoder: (model) => new GeminiStreamEncoder(model),
};

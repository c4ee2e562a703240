import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ChatRequest,
  ChatResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  FinishReason,
  Message,
  StreamEvent,
  ToolCall,
} from '../canonical.js';
import { type ProviderClient, type ProviderEndpoint, type UpstreamCall, UpstreamFailure } from '../client.js';
import { type LocalScript, readScript } from './script.js';

export const LOCAL_MODEL = 'flowloom-local';
export const LOCAL_EMBEDDING_MODEL = 'flowloom-local-embedding';

function messageText(message: Message): string {
  switch (message.role) {
    case 'user':
      return message.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
    case 'assistant':
      return message.content ?? '';
    default:
      return message.content;
  }
}

/** Roughly four characters a token, plus framing per message: stable and good enough for budgets. */
export function countTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function lastUserText(request: ChatRequest): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const m = request.messages[i];
    if (m?.role === 'user') return messageText(m);
  }
  return '';
}

interface Plan {
  id: string;
  reply: string;
  toolCalls: ToolCall[];
  finishReason: FinishReason;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  script: LocalScript;
}

function plan(request: ChatRequest): Plan {
  const prompt = lastUserText(request);
  const found = readScript(prompt);
  if (found && 'invalid' in found)
    throw new UpstreamFailure(
      'http',
      `local provider: ${found.invalid}`,
      400,
      undefined,
      'invalid_request_error',
    );
  const script: LocalScript = found ?? {};
  if (script.error) {
    const status = script.error.status;
    throw new UpstreamFailure(
      'http',
      `local provider: ${script.error.message ?? `scripted error ${status}`}`,
      status,
    );
  }
  const digest = createHash('sha256').update(prompt).digest('hex');
  const shown = prompt
    .replace(/flowloom-local:.*$/m, '')
    .trim()
    .slice(0, 200);
  const defaultReply =
    request.responseFormat && request.responseFormat.type !== 'text'
      ? JSON.stringify({ echo: shown, digest: digest.slice(0, 12) })
      : `flowloom-local echo: "${shown}" (digest ${digest.slice(0, 12)}). This is a deterministic test provider, not a language model.`;
  let reply = script.reply ?? defaultReply;
  const toolCalls = (script.toolCalls ?? []).map((c, i) => ({
    id: `call_${digest.slice(i * 4, i * 4 + 20)}${i}`,
    name: c.name,
    arguments: JSON.stringify(c.arguments),
  }));
  const outputBudget = request.maxTokens;
  let outputTokens =
    script.outputTokens ??
    countTokens(reply) + toolCalls.reduce((n, c) => n + countTokens(c.arguments) + 3, 0);
  let finishReason: FinishReason = script.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop');
  if (outputBudget !== undefined && outputTokens > outputBudget) {
    reply = reply.slice(0, outputBudget * 4);
    outputTokens = outputBudget;
    finishReason = 'length';
  }
  const inputTokens =
    script.inputTokens ??
    request.messages.reduce((n, m) => n + countTokens(messageText(m)) + 4, 0) +
      (request.tools ?? []).reduce((n, t) => n + countTokens(JSON.stringify(t)), 0);
  return {
    id: `chatcmpl-local-${digest.slice(0, 24)}`,
    reply,
    toolCalls,
    finishReason,
    inputTokens,
    outputTokens,
    cachedTokens: Math.min(script.cachedTokens ?? 0, inputTokens),
    script,
  };
}

function split(text: string, parts: number): string[] {
  if (text === '') return [];
  const size = Math.max(1, Math.ceil(text.length / parts));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

async function wait(ms: number | undefined, signal: AbortSignal): Promise<void> {
  if (!ms) return;
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    const reason: unknown = signal.reason;
    const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
    throw new UpstreamFailure(
      timedOut ? 'timeout' : 'aborted',
      timedOut ? 'local provider timed out' : 'the caller went away',
    );
  }
}

/** Deterministic vectors from the text's hash: equal texts get equal vectors, nothing more. */
function embed(text: string, dimensions: number): number[] {
  const out: number[] = [];
  let block = createHash('sha256').update(text).digest();
  while (out.length < dimensions) {
    for (let i = 0; i + 1 < block.length && out.length < dimensions; i += 2)
      out.push((block.readUInt16BE(i) / 65535) * 2 - 1);
    block = createHash('sha256').update(block).digest();
  }
  const norm = Math.sqrt(out.reduce((s, v) => s + v * v, 0)) || 1;
  return out.map((v) => v / norm);
}

export function createLocalProvider(name = 'local'): ProviderClient {
  const endpoint: ProviderEndpoint = { name, kind: 'local' };
  return {
    endpoint,
    async chat({ request, model, signal }: UpstreamCall<ChatRequest>): Promise<ChatResponse> {
      const p = plan(request);
      await wait(p.script.delayMs, signal);
      return {
        id: p.id,
        model,
        created: Math.floor(Date.now() / 1000),
        content: p.toolCalls.length > 0 && p.script.reply === undefined ? null : p.reply,
        toolCalls: p.toolCalls,
        finishReason: p.finishReason,
        usage: {
          inputTokens: p.inputTokens,
          outputTokens: p.outputTokens,
          cachedInputTokens: p.cachedTokens,
        },
      };
    },

    async *chatStream({
      request,
      model,
      signal,
    }: UpstreamCall<ChatRequest>): AsyncGenerator<StreamEvent, void, undefined> {
      const p = plan(request);
      await wait(p.script.delayMs, signal);
      yield { type: 'start', id: p.id, model, created: Math.floor(Date.now() / 1000) };
      yield { type: 'usage', usage: { inputTokens: p.inputTokens, cachedInputTokens: p.cachedTokens } };
      const text = p.toolCalls.length > 0 && p.script.reply === undefined ? '' : p.reply;
      for (const piece of split(
        text,
        p.script.chunks ?? Math.min(16, Math.max(1, Math.ceil(text.length / 24))),
      )) {
        await wait(p.script.chunkDelayMs, signal);
        yield { type: 'text', delta: piece };
      }
      for (const [index, call] of p.toolCalls.entries()) {
        yield { type: 'tool_call_start', index, id: call.id, name: call.name };
        yield { type: 'tool_call_delta', index, argumentsDelta: call.arguments };
      }
      yield { type: 'finish', finishReason: p.finishReason };
      yield { type: 'usage', usage: { outputTokens: p.outputTokens } };
    },

    async embeddings({ request, model }: UpstreamCall<EmbeddingsRequest>): Promise<EmbeddingsResponse> {
      const dimensions = request.dimensions ?? 256;
      return {
        model,
        data: request.input.map((text) => embed(text, dimensions)),
        usage: { inputTokens: request.input.reduce((n, t) => n + countTokens(t), 0) },
      };
    },

    async close() {},
  };
}

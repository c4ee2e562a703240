import { randomBytes } from 'node:crypto';
import type { FakeFinish, FakeReplyContent, FakeThinkingBlock, FakeToolCall, FakeUsage } from './types.js';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// One randomBytes call per 16 KiB instead of one per id: ids are minted on the hot path.
const POOL_SIZE = 16 * 1024;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function pooledRandom(length: number): Buffer {
  if (poolOffset + length > pool.length) {
    pool = randomBytes(Math.max(POOL_SIZE, length));
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + length);
  poolOffset += length;
  return bytes;
}

/** Random [A-Za-z0-9]{length}, the alphabet of OpenAI and Anthropic ids. */
export function randomId(length: number): string {
  const bytes = pooledRandom(length);
  let out = '';
  for (const byte of bytes) out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
  return out;
}

export function randomHex(length: number): string {
  return pooledRandom(Math.ceil(length / 2))
    .toString('hex')
    .slice(0, length);
}

/** FNV-1a: a cheap deterministic digest for the default echo answer and embeddings. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

/** Prompt tokens as the fake counts them: text plus a small per-message overhead, like chat formats add. */
export function estimatePromptTokens(promptText: string, messages: number): number {
  return estimateTokens(promptText) + 3 * Math.max(1, messages) + 3;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Text of a content value shaped like OpenAI's or Anthropic's: a string or an array of `{type:'text', text}`. */
export function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content;
  let out = '';
  for (const part of asArray(content)) {
    if (isRecord(part) && typeof part['text'] === 'string') out += part['text'];
  }
  return out;
}

/** Split text into word-sized deltas, as models stream roughly a token at a time. */
export function splitWords(text: string): string[] {
  const words = text.match(/\s*\S+/g);
  return words ?? (text.length > 0 ? [text] : []);
}

/** Cut a string into at most `count` non-empty consecutive pieces. */
export function splitInto(text: string, count: number): string[] {
  const pieces = Math.max(1, Math.min(count, text.length));
  const size = Math.ceil(text.length / pieces);
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length > 0 ? out : [''];
}

export function argumentsJson(call: FakeToolCall): string {
  return typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments);
}

export function argumentsObject(call: FakeToolCall): Record<string, unknown> {
  if (typeof call.arguments !== 'string') return { ...call.arguments };
  try {
    const parsed: unknown = JSON.parse(call.arguments);
    return isRecord(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** The answer a behaviour describes, with every default filled in. */
export interface ResolvedAnswer {
  text: string;
  chunks: readonly string[];
  toolCalls: readonly FakeToolCall[];
  thinking: readonly FakeThinkingBlock[];
  finish: FakeFinish;
  stopSequence: string | undefined;
  model: string;
  usage: Required<FakeUsage>;
}

/** A number field of a request body, if it is one. */
export function numberField(body: Record<string, unknown>, name: string): number | undefined {
  const value = body[name];
  return typeof value === 'number' ? value : undefined;
}

export function resolveAnswer(
  content: FakeReplyContent,
  context: {
    provider: string;
    model: string;
    lastUserText: string;
    promptText: string;
    promptMessages: number;
    /** The request's output limit, when it set one. */
    maxTokens?: number | undefined;
  },
): ResolvedAnswer {
  let text = content.text ?? content.chunks?.join('');
  if (text === undefined && content.toolCalls !== undefined && content.toolCalls.length > 0) text = '';
  if (text === undefined) {
    const snippet = context.lastUserText.slice(0, 80);
    text = `Fake ${context.provider} answer ${fnv1a(context.lastUserText).toString(16).padStart(8, '0')}: ${snippet}`;
  }
  const chunks = content.chunks ?? splitWords(text);
  const toolCalls = content.toolCalls ?? [];
  let toolText = '';
  for (const call of toolCalls) toolText += call.name + argumentsJson(call);
  const thinking = content.thinking ?? [];
  let thinkingText = '';
  for (const block of thinking) thinkingText += 'thinking' in block ? block.thinking : block.redacted;
  const usage = content.usage ?? {};
  const input = usage.input ?? estimatePromptTokens(context.promptText, context.promptMessages);
  const reasoning = usage.reasoning ?? estimateTokens(thinkingText);
  let output = usage.output ?? Math.max(1, estimateTokens(text) + estimateTokens(toolText) + reasoning);
  const limit = context.maxTokens;
  const cut = content.honourMaxTokens === true && limit !== undefined && output > limit;
  if (cut) output = limit;
  return {
    text,
    chunks,
    toolCalls,
    thinking,
    finish: cut ? 'length' : (content.finish ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop')),
    stopSequence: content.stopSequence,
    model: content.model ?? context.model,
    usage: {
      input,
      output,
      cached: usage.cached ?? 0,
      cacheWrite: usage.cacheWrite ?? 0,
      cacheWrite1h: Math.min(usage.cacheWrite1h ?? 0, usage.cacheWrite ?? 0),
      reasoning,
    },
  };
}

/** A deterministic unit vector for an input, so equal inputs embed equally. */
export function embeddingVector(input: string, dimensions: number): Float32Array {
  const vector = new Float32Array(dimensions);
  let state = fnv1a(input) || 1;
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    // xorshift32: cheap and deterministic
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const value = ((state >>> 0) / 0xffffffff) * 2 - 1;
    vector[i] = value;
    norm += value * value;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dimensions; i++) vector[i] = (vector[i] ?? 0) * scale;
  return vector;
}

export function float32ToBase64(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}

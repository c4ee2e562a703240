import { AppError } from '@flowloom/errors';
import { z } from 'zod';
import type { JsonObject, JsonValue } from './canonical.js';

type Issue = z.core.$ZodIssue;
type PathKey = PropertyKey;

/**
 * Any JSON value; tool inputs and schemas are opaque to the gateway but must still be JSON. A plain type
 * guard rather than a recursive zod union, which costs tens of microseconds per schema on the hot path.
 */
export function isJsonValue(value: unknown, depth = 0): value is JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || depth > 64) return false;
  if (Array.isArray(value)) return value.every((item) => isJsonValue(item, depth + 1));
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  return Object.values(value).every((item) => isJsonValue(item, depth + 1));
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && isJsonValue(value);
}

export const jsonValue = z.custom<JsonValue>((value) => isJsonValue(value), { error: 'expected JSON' });
export const jsonObject = z.custom<JsonObject>((value) => isJsonObject(value), { error: 'expected object' });

/**
 * Parses `body`; the first zod issue becomes `toError(param, message)`, where `param` is the dotted path
 * of the offending field (`messages.1.content.0.type`, '' for the body itself) and `message` says what is
 * wrong with it. Each caller format shapes the error its own way around these two (see below).
 */
function parseWith<T>(
  schema: z.ZodType<T>,
  body: unknown,
  toError: (param: string, message: string) => AppError,
): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  // Inputs are only reported on the failure path (they tell a missing field from a wrong one); doing it
  // on every parse would triple its cost.
  const detailed = schema.safeParse(body, { reportInput: true });
  const first = (detailed.success ? result.error : detailed.error).issues[0];
  if (!first) throw toError('', 'invalid value');
  const { path, message } = describeIssue(first, []);
  throw toError(path.map(String).join('.'), message);
}

/**
 * Anthropic's (and Gemini's) shape: the message starts with the field's path, as Anthropic's own errors
 * do (`messages.1.content.0.type: ...`), and `param` is that path.
 */
export function parseRequest<T>(schema: z.ZodType<T>, body: unknown): T {
  return parseWith(schema, body, invalidField);
}

/** OpenAI's shape: `Invalid chat completion request: messages.0.role: ...`, with `param` the path. */
export function parseOrThrow<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  return parseWith(
    schema,
    body,
    (param, message) =>
      new AppError('invalid_request', `Invalid ${what}: ${param ? `${param}: ` : ''}${message}`, {
        ...(param ? { param } : {}),
      }),
  );
}

export function invalidField(param: string, message: string): AppError {
  return new AppError('invalid_request', param === '' ? `Request body: ${message}` : `${param}: ${message}`, {
    ...(param === '' ? {} : { param }),
  });
}

function describeIssue(issue: Issue, prefix: PathKey[]): { path: PathKey[]; message: string } {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    // A union (string | blocks) fails in every branch; report the branch that got furthest, since
    // "expected string" is useless when the caller clearly sent blocks.
    const deeper = issue.errors.filter((branch) => branch.length > 0 && !isShallowTypeMismatch(branch));
    const chosen = deeper[0];
    if (deeper.length === 1 && chosen?.[0]) return describeIssue(chosen[0], path);
    if (issue.discriminator !== undefined && 'options' in issue && Array.isArray(issue.options)) {
      const options = issue.options.map((option) => JSON.stringify(option)).join(', ');
      return { path, message: `unsupported value; expected one of ${options}` };
    }
    const expected = issue.errors
      .map((branch) => branch[0])
      .filter((first): first is Issue => first?.code === 'invalid_type')
      .map((first) => (first.code === 'invalid_type' ? first.expected : ''));
    if (expected.length === issue.errors.length && expected.length > 0) {
      return { path, message: `expected ${[...new Set(expected)].join(' or ')}` };
    }
    return { path, message: 'invalid value' };
  }
  if (issue.code === 'invalid_type') {
    // Custom messages (`{ error: ... }`) are kept; zod's defaults are replaced by clearer ones.
    if (!issue.message.startsWith('Invalid input')) return { path, message: issue.message };
    return { path, message: issue.input === undefined ? 'Field required' : `expected ${issue.expected}` };
  }
  if (issue.code === 'invalid_value') {
    if (!issue.message.startsWith('Invalid')) return { path, message: issue.message };
    return { path, message: `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}` };
  }
  // A schema's own wording (`.min(1, 'messages must contain at least one message')`) is kept.
  if ((issue.code === 'too_small' || issue.code === 'too_big') && !/^Too (small|big)/.test(issue.message))
    return { path, message: issue.message };
  if (issue.code === 'too_small' && issue.origin === 'array') {
    return { path, message: `must have at least ${String(issue.minimum)} item(s)` };
  }
  if (issue.code === 'too_small' && issue.origin === 'string') {
    return { path, message: `must be at least ${String(issue.minimum)} character(s)` };
  }
  if (issue.code === 'too_small') return { path, message: `must be >= ${String(issue.minimum)}` };
  if (issue.code === 'too_big') return { path, message: `must be <= ${String(issue.maximum)}` };
  if (issue.code === 'invalid_format' && issue.format === 'regex') return { path, message: issue.message };
  return { path, message: issue.message };
}

function isShallowTypeMismatch(branch: Issue[]): boolean {
  return branch.length === 1 && branch[0]?.code === 'invalid_type' && branch[0].path.length === 0;
}

/** Tool-call arguments as an object for formats that carry them as JSON (Anthropic `input`, Gemini `args`). */
export function argumentsToObject(text: string): JsonObject {
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    // Models occasionally emit invalid or non-object JSON; an empty object keeps the request valid.
    return isJsonObject(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** `data:image/png;base64,AAAA` → parts; undefined for anything else. */
export function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const match = /^data:([^;,]+)(?:;[^;,]*)*;base64,(.*)$/s.exec(url);
  if (!match?.[1] || match[2] === undefined) return undefined;
  return { mediaType: match[1].toLowerCase(), data: match[2] };
}

/** Drops `undefined` members recursively, so typed wire objects can be returned as `JsonObject`. */
export function toJsonObject(value: WireObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, member] of Object.entries(value)) {
    const converted = toJsonValue(member);
    if (converted !== undefined) out[key] = converted;
  }
  return out;
}

export type WireValue = string | number | boolean | null | undefined | readonly WireValue[] | WireObject;
export type WireObject = { readonly [key: string]: WireValue };

function toJsonValue(value: WireValue): JsonValue | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (isWireArray(value)) return value.map((item) => toJsonValue(item) ?? null);
  return toJsonObject(value);
}

function isWireArray(value: readonly WireValue[] | WireObject): value is readonly WireValue[] {
  return Array.isArray(value);
}

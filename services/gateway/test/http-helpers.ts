import { expect } from 'vitest';
import type { TestGateway, TestResponse } from './support.js';

/** A UUIDv7, which is what the gateway mints for every request id. */
export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export type ErrorFormat = 'openai' | 'anthropic';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
}

/** Sends anything (raw bytes, odd headers) and reads the answer like support.ts does. */
export async function send(
  t: TestGateway,
  path: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Uint8Array;
    signal?: AbortSignal;
  },
): Promise<TestResponse> {
  const response = await fetch(`${t.url}${path}`, {
    method: init.method ?? 'POST',
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** Asserts an OpenAI-format error: exact shape, status, code, JSON and a request id. */
export function expectOpenAIError(res: TestResponse, status: number, code: string): OpenAIErrorBody['error'] {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/json');
  expect(res.headers.get('x-request-id')).toMatch(UUID_V7);
  const body = res.body as OpenAIErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(typeof body.error.type).toBe('string');
  expect(body.error.param === null || typeof body.error.param === 'string').toBe(true);
  return body.error;
}

/** Asserts an Anthropic-format error: `{type:"error", error:{type, message}}` and a request id. */
export function expectAnthropicError(
  res: TestResponse,
  status: number,
  type: string,
): AnthropicErrorBody['error'] {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/json');
  expect(res.headers.get('x-request-id')).toMatch(UUID_V7);
  const body = res.body as AnthropicErrorBody;
  expect(Object.keys(body).sort()).toEqual(['error', 'type']);
  expect(body.type).toBe('error');
  expect(Object.keys(body.error).sort()).toEqual(['message', 'type']);
  expect(body.error.type).toBe(type);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error;
}

/** The Anthropic error type that goes with each of our codes (libs/errors mapping). */
const ANTHROPIC_TYPE: Record<string, string> = {
  invalid_json: 'invalid_request_error',
  invalid_utf8: 'invalid_request_error',
  invalid_request: 'invalid_request_error',
  body_too_large: 'request_too_large',
  unsupported_media_type: 'invalid_request_error',
  missing_api_key: 'authentication_error',
  invalid_api_key: 'authentication_error',
  key_revoked: 'authentication_error',
  key_expired: 'authentication_error',
  model_not_allowed: 'permission_error',
  forbidden: 'permission_error',
  model_not_found: 'not_found_error',
  not_found: 'not_found_error',
};

/** Checks an error in the given format; for OpenAI also the stable code. Returns the message. */
export function expectError(res: TestResponse, format: ErrorFormat, status: number, code: string): string {
  if (format === 'openai') return expectOpenAIError(res, status, code).message;
  const type = ANTHROPIC_TYPE[code];
  if (!type) throw new Error(`no Anthropic type known for ${code}`);
  return expectAnthropicError(res, status, type).message;
}

export type RecordedEvent = Awaited<ReturnType<TestGateway['events']>>[number];

export const REQUEST_COMPLETED = 'dev.flowloom.gateway.request.completed.v1';
export const REQUEST_FAILED = 'dev.flowloom.gateway.request.failed.v1';
export const KEY_CHANGED = 'dev.flowloom.gateway.key.changed.v1';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The events published so far, each once: delivery is at least once and consumers deduplicate by
 * event id, so a redelivered event must not make a test count it twice.
 */
export async function eventsOf(t: TestGateway): Promise<RecordedEvent[]> {
  const seen = new Set<string>();
  return (await t.events()).filter((e) => !seen.has(e.id) && seen.add(e.id) !== undefined);
}

/** Reads one sample from the Prometheus text format; undefined when the series does not exist. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      found[pair[1] ?? ''] = pair[2] ?? '';
    }
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

import type { Io } from './command.js';

/** Calls a running FlowLoom's admin API with FLOWLOOM_URL and FLOWLOOM_API_KEY. */
export async function callApi(io: Io, method: string, path: string, body?: unknown): Promise<unknown> {
  const base = (io.env.FLOWLOOM_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const key = io.env.FLOWLOOM_API_KEY;
  if (!key)
    throw new Error(
      'FLOWLOOM_API_KEY is not set. Export an admin key (printed once by `flowloom up`, or FLOWLOOM_ADMIN_KEY).',
    );
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    throw new Error(
      `Cannot reach FlowLoom at ${base} (${(error as Error).message}). Is it running (npm start)? Set FLOWLOOM_URL otherwise.`,
    );
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep text
  }
  if (!response.ok) {
    const message = (parsed as { error?: { message?: string } }).error?.message ?? text;
    throw new Error(`${method} ${path} failed (${response.status}): ${message}`);
  }
  return parsed;
}

import { AppError } from '@flowloom/errors';
import type { z } from 'zod';

/** Parses with a zod schema; a failure becomes one `invalid_request` naming the first bad field. */
export function parseOrThrow<T extends z.ZodType>(schema: T, body: unknown, what: string): z.output<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
  const message = issue ? issue.message : 'invalid value';
  throw new AppError('invalid_request', `Invalid ${what}: ${param ? `${param}: ` : ''}${message}`, {
    ...(param ? { param } : {}),
  });
}

/** Parses JSON text that an upstream produced; garbage becomes a clean upstream error, not a crash. */
export function parseUpstreamJson(text: string, provider: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError('upstream_bad_response', `${provider} returned a body that is not JSON`);
  }
}

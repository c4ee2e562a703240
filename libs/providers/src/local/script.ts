import { z } from 'zod';

/**
 * The `local` provider is a deterministic stand-in, not a language model. A test or demo scripts its
 * answer with a line in the last user message:
 *
 *   flowloom-local: {"reply":"hi","outputTokens":50,"delayMs":100,"error":{"status":429}}
 */
export const localScriptSchema = z.strictObject({
  reply: z.string().optional(),
  inputTokens: z.number().int().nonnegative().optional(),
  outputTokens: z.number().int().nonnegative().optional(),
  cachedTokens: z.number().int().nonnegative().optional(),
  toolCalls: z
    .array(z.strictObject({ name: z.string().min(1), arguments: z.record(z.string(), z.json()) }))
    .optional(),
  /** Wait before answering (before the first byte when streaming). */
  delayMs: z.number().int().nonnegative().max(600_000).optional(),
  /** Wait between streamed chunks. */
  chunkDelayMs: z.number().int().nonnegative().max(60_000).optional(),
  /** Number of chunks a streamed reply is split into. */
  chunks: z.number().int().positive().max(10_000).optional(),
  finishReason: z.enum(['stop', 'length', 'tool_calls', 'content_filter']).optional(),
  error: z
    .strictObject({ status: z.number().int().min(400).max(599), message: z.string().optional() })
    .optional(),
});
export type LocalScript = z.infer<typeof localScriptSchema>;

const MARKER = 'flowloom-local:';

/** Finds the script line; returns an error message instead when the line is there but invalid. */
export function readScript(text: string): LocalScript | { invalid: string } | undefined {
  const at = text.lastIndexOf(MARKER);
  if (at === -1) return undefined;
  const line =
    text
      .slice(at + MARKER.length)
      .split('\n')[0]
      ?.trim() ?? '';
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { invalid: `the ${MARKER} line is not JSON` };
  }
  const parsed = localScriptSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { invalid: `${MARKER} ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` };
  }
  return parsed.data;
}

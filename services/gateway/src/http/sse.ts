import { once } from 'node:events';
import { toAnthropicError, toGeminiError, toOpenAIError } from '@flowloom/errors';
import type { StreamEncoder } from '@flowloom/providers';
import type { FastifyReply } from 'fastify';
import type { ChatStream } from '../app/chat.js';
import { fromFastifyError } from './errors.js';

/** Requests answered with a stream: their route records them once the stream ends (see server.ts). */
const streamed = new WeakSet<object>();

export function answeredWithStream(request: object): boolean {
  return streamed.has(request);
}

/**
 * Writes a chat stream as Server-Sent Events in the caller's format. Headers go out only after
 * the first upstream event (the stream is already open), so fallback stayed possible until then.
 */
export async function writeSse(
  reply: FastifyReply,
  stream: ChatStream,
  encoder: StreamEncoder,
  headers: Record<string, string>,
  format: 'openai' | 'anthropic' | 'gemini',
): Promise<void> {
  const res = reply.raw;
  streamed.add(reply.request);
  reply.hijack();
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    ...headers,
  });
  const write = async (text: string): Promise<void> => {
    if (text === '' || res.destroyed) return;
    if (!res.write(text)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
  };
  try {
    for await (const event of stream.events) {
      if (res.destroyed) break;
      await write(encoder.encode(event));
    }
    await write(encoder.end(stream.usage()));
  } catch (error) {
    const appError = fromFastifyError(error);
    const type =
      format === 'anthropic'
        ? toAnthropicError(appError).error.type
        : format === 'gemini'
          ? toGeminiError(appError).error.status
          : toOpenAIError(appError).error.type;
    await write(encoder.error(appError.message, type));
  } finally {
    if (!res.destroyed) res.end();
    // Returning early from the loop (client gone) must still run the generator's bookkeeping.
    await stream.events.return(undefined).catch(() => {});
  }
}

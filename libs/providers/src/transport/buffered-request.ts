import type { Dispatcher } from 'undici';
import type { Cancellation } from '../cancellation.js';

/** A whole answer read into memory: its status, headers and body text. */
export interface BufferedAnswer {
  statusCode: number;
  /** Header names in lower case; a repeated header is a list. */
  headers(): Record<string, string | string[]>;
  text: string;
}

export interface BufferedRequest {
  origin: string;
  path: string;
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  body?: string;
}

/**
 * Sends a request and reads its whole answer, straight off undici's dispatcher. A non-streamed model
 * call needs nothing more, and `Dispatcher.request` would wrap each answer in a Readable stream, parse
 * every header into an object and collect the body through the stream: per call, CPU on the thread
 * that serves every request. Headers are parsed here only when asked for (an error's retry-after).
 *
 * Rejects with undici's error, or with `cancel.reason` once cancelled.
 */
export function bufferedRequest(
  dispatcher: Dispatcher,
  request: BufferedRequest,
  cancel: Cancellation,
): Promise<BufferedAnswer> {
  return new Promise<BufferedAnswer>((resolve, reject) => {
    if (cancel.aborted) {
      reject(cancel.reason);
      return;
    }
    let abort: ((reason: Error) => void) | undefined;
    let settled = false;
    let statusCode = 0;
    let rawHeaders: Buffer[] = [];
    const chunks: Buffer[] = [];
    const stopListening = cancel.whenAborted(() => abort?.(asError(cancel.reason)));
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      stopListening();
      return true;
    };
    // The callback interface undici's own request() uses; the newer one parses every header first.
    const handler: Dispatcher.DispatchHandler = {
      onConnect(abortRequest) {
        abort = abortRequest;
        if (cancel.aborted) abortRequest(asError(cancel.reason));
      },
      onHeaders(status, raw) {
        // 1xx answers come before the real one and are passed over.
        if (status < 200) return true;
        statusCode = status;
        rawHeaders = raw;
        return true;
      },
      onData(chunk) {
        chunks.push(chunk);
        return true;
      },
      onComplete() {
        if (!settle()) return;
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        let text = body.toString('utf8');
        // As undici's body.text(): a byte order mark is not part of the text.
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        const raw = rawHeaders;
        resolve({ statusCode, headers: () => parseRawHeaders(raw), text });
      },
      onError(error) {
        if (!settle()) return;
        if (cancel.aborted) reject(cancel.reason);
        // An error answer whose body broke off still says what it is; only its text is lost.
        else if (statusCode >= 300) {
          const raw = rawHeaders;
          resolve({ statusCode, headers: () => parseRawHeaders(raw), text: '' });
        } else reject(error);
      },
    };
    dispatcher.dispatch(
      {
        origin: request.origin,
        path: request.path,
        method: request.method,
        headers: request.headers,
        ...(request.body !== undefined ? { body: request.body } : {}),
      },
      handler,
    );
  });
}

/** Undici aborts with an Error; a reason that is not one is carried by one. */
function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

/** Undici's raw headers (name, value, name, value…) as an object of lower-case names. */
export function parseRawHeaders(raw: readonly Buffer[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const known = out[name];
    if (known === undefined) out[name] = value;
    else if (Array.isArray(known)) known.push(value);
    else out[name] = [known, value];
  }
  return out;
}

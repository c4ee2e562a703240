import type { KeyRecord } from '../domain/keys.js';

export type CallerApi = 'openai' | 'anthropic' | 'gemini' | 'grpc';

/** Everything a use case needs to know about the request it serves. */
export interface RequestContext {
  requestId: string;
  api: CallerApi;
  key: KeyRecord;
  /** `x-flowloom-job`, `x-flowloom-session`, `x-flowloom-project` (project defaults to the key's). */
  tags: { job?: string; session?: string; project?: string };
  /** Aborts when the caller goes away; every upstream call listens to it. */
  signal: AbortSignal;
  /** `performance.now()` when the request arrived. */
  startedAt: number;
  /** The decision the policies took before the call, once they did (none when no policy is active). */
  decisionId?: string;
  /**
   * As `signal.aborted`, and `signal`'s abort listeners, for a context that can tell without making
   * an AbortSignal: on Node 20 each signal and listener costs microseconds of the request's thread,
   * and most requests never see their caller leave. Use them through `callerGone`/`onCallerGone`.
   */
  readonly gone?: boolean;
  whenGone?(listener: () => void): () => void;
}

/** Whether the caller has gone away. */
export function callerGone(ctx: RequestContext): boolean {
  return ctx.gone ?? ctx.signal.aborted;
}

/** Calls `listener` once, when the caller goes away; returns what stops that. */
export function onCallerGone(ctx: RequestContext, listener: () => void): () => void {
  if (ctx.whenGone) return ctx.whenGone(listener);
  const signal = ctx.signal;
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

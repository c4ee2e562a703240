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
}

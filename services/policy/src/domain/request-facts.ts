import type { RequestCompleted, RequestFailed } from '@flowloom/contracts';

/**
 * What a policy would have read about a request, rebuilt from its request event when no decision was
 * recorded for it (no policy was active): the traffic a replay evaluates a candidate against.
 */
export interface RebuiltRequest {
  requestId: string;
  /** ISO time of the event (the request's end). */
  at: string;
  /** An EvaluationInput as a decision records it. */
  input: Record<string, unknown>;
  /** Whether there was an answer (its usage and cost are `input.response`). */
  answered: boolean;
}

/**
 * Inputs a request event cannot tell, which only a decision gathers before the call: the headers and
 * the caller's team and role are not in the event; the pre-call estimates, the token cap, the tool
 * count and the region are not either; signals and budget are computed by the gateway at the time.
 */
export const NOT_IN_REQUEST_EVENTS: readonly string[] = [
  'request.headers',
  'request.estimated_tokens',
  'request.cost',
  'request.max_tokens',
  'request.tools_count',
  'request.region',
  'caller.team',
  'caller.role',
  'signals',
  'budget',
];

type RequestEvent = { kind: 'completed'; data: RequestCompleted } | { kind: 'failed'; data: RequestFailed };

export function rebuildRequest(event: RequestEvent, at: string): RebuiltRequest {
  const d = event.data;
  const request = {
    model: d.model,
    stream: d.stream,
    ...(d.keyId ? { key: d.keyId } : {}),
    ...(d.project ? { project: d.project } : {}),
    ...(d.job ? { job: d.job } : {}),
    ...(d.session ? { session: d.session } : {}),
    ...(d.provider ? { provider: d.provider } : {}),
  };
  const caller = {
    ...(d.keyId ? { key_id: d.keyId } : {}),
    ...(d.owner ? { owner: d.owner } : {}),
  };
  // A failed request answered only when a stream broke after it started (usage already spent).
  const usage = d.usage;
  const response = usage
    ? {
        input_tokens: usage.inputTokens,
        output_tokens: usage.outputTokens,
        cached_input_tokens: usage.cachedInputTokens,
        cost: d.costUsd ?? 0,
        status: event.kind === 'completed' ? 'completed' : 'failed',
        finish_reason: event.kind === 'completed' ? (event.data.finishReason ?? '') : 'error',
        ...(event.kind === 'completed' && event.data.usageEstimated ? { usage_estimated: true } : {}),
      }
    : undefined;
  return {
    requestId: d.requestId,
    at,
    input: { request, caller, now: Date.parse(at), ...(response ? { response } : {}) },
    answered: response !== undefined,
  };
}

import {
  type CloudEvent,
  createEvent,
  type DecisionRecord,
  GATEWAY_REQUEST_COMPLETED,
  GATEWAY_REQUEST_FAILED,
  type RequestCompleted,
  type RequestFailed,
  uuidv7,
} from '@flowloom/contracts';

// Recorded traffic as the gateways publish it, for replay and retention tests: job "nightly", key k1.

const context = (requestId: string, model: string) => ({
  requestId,
  keyId: 'k1',
  owner: 'alice',
  job: 'nightly',
  api: 'openai',
  operation: 'chat' as const,
  model,
  stream: false,
  latencyMs: 5,
  attempts: 1,
});

/** An answered request's event, at `atMs` (now by default). */
export function completedEvent(
  requestId: string,
  model: string,
  atMs = Date.now(),
): CloudEvent<RequestCompleted> {
  return createEvent<RequestCompleted>(
    GATEWAY_REQUEST_COMPLETED,
    'flowloom/gateway',
    {
      ...context(requestId, model),
      provider: 'local',
      deployment: 'local/flowloom-local',
      providerModel: 'flowloom-local',
      usage: { inputTokens: 10, outputTokens: 4, cachedInputTokens: 0 },
      costUsd: 0,
      finishReason: 'stop',
    },
    'job/nightly',
    atMs,
  );
}

/** A failed request's event. */
export function failedEvent(requestId: string, model: string): CloudEvent<RequestFailed> {
  return createEvent<RequestFailed>(
    GATEWAY_REQUEST_FAILED,
    'flowloom/gateway',
    { ...context(requestId, model), errorCode: 'upstream_error', errorMessage: 'down', httpStatus: 502 },
    'job/nightly',
  );
}

/** A decision that let the request through, made at `atMs` (now by default). */
export function allowDecision(requestId: string, model: string, atMs = Date.now()): DecisionRecord {
  return {
    decisionId: uuidv7(atMs),
    requestId,
    at: new Date(atMs).toISOString(),
    keyId: 'k1',
    job: 'nightly',
    verdict: 'allow',
    actions: [],
    intendedVerdict: 'allow',
    intendedActions: [],
    enforced: true,
    evaluationMicros: 1,
    evaluations: [],
    input: { request: { model, key: 'k1', job: 'nightly' }, caller: { key_id: 'k1' }, now: atMs },
  };
}

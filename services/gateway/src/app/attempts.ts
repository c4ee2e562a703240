import type { RoutingConfig } from '@flowloom/config';
import { AppError } from '@flowloom/errors';
import {
  LazyAbort,
  type ProviderClient,
  UnsupportedRequest,
  type UpstreamCall,
  UpstreamFailure,
} from '@flowloom/providers';
import { scrubSecrets } from '@flowloom/telemetry';
import { retryDelayMs } from '../domain/backoff.js';
import type { Deployment } from '../domain/routing.js';
import type { GatewayMetrics } from '../ports/metrics.js';
import { callerGone, onCallerGone, type RequestContext } from './context.js';
import type { Router } from './router.js';

export interface AttemptResult<T> {
  value: T;
  deployment: Deployment;
  attempts: number;
  /** Aborts the winning attempt's upstream call; the caller owns it until its stream ends. */
  controller: LazyAbort;
}

/**
 * Less time than this left before the total deadline ends the request instead of starting another
 * attempt: no provider answers in a few milliseconds, and a timer cut to the deadline may fire a
 * millisecond before it, which would otherwise start a last attempt doomed to time out at once.
 */
const LAST_ATTEMPT_MIN_MS = 10;

/** An abort reason recognized as a timeout by the provider clients. */
export function timeoutReason(): Error {
  return new DOMException('The operation timed out', 'TimeoutError');
}

/**
 * Runs `call` against the candidates in order: retries and falls back on retryable failures with
 * jittered backoff that honours `retry-after`, feeds the circuit breakers and latency averages, and
 * turns the last failure into an error the caller can act on. Only failures that warrant a fallback
 * count against a deployment's breaker; an upstream error that is the caller's fault does not.
 *
 * A deployment whose format cannot express the request (`UnsupportedRequest`, raised before anything
 * is sent) is skipped for the rest of this request without using up an attempt or touching its
 * breaker: the request is at fault, not the deployment, and another provider in the route may take it
 * as it stands. Only when no candidate can is the caller told, with a 400 naming each deployment and
 * the field it refused.
 */
export async function withFallback<T>(
  ctx: RequestContext,
  candidates: readonly Deployment[],
  router: Router,
  routing: RoutingConfig,
  metrics: GatewayMetrics,
  call: (client: ProviderClient, deployment: Deployment, abort: LazyAbort) => Promise<T>,
): Promise<AttemptResult<T>> {
  const deadline = ctx.startedAt + routing.totalTimeoutMs;
  if (!candidates.some((d) => router.breaker(d.id).isAvailable(Date.now()))) {
    throw new AppError(
      'no_deployment_available',
      `Every deployment for this model is cooling down after repeated failures (${candidates.map((d) => d.id).join(', ')}). Retry shortly.`,
      { retryAfterSeconds: Math.ceil(routing.circuitBreaker.cooldownMs / 1000) },
    );
  }
  let lastFailure: UpstreamFailure | undefined;
  let lastDeployment: Deployment | undefined;
  const refused = new Map<string, UnsupportedRequest>();
  let cursor = 0;
  // Attempts used so far: fewer than maxAttempts when the deadline ends the request, as the caller is told.
  let used = 0;
  // Round robin over the candidates, passing over those that cannot take the request.
  const nextCandidate = (): Deployment | undefined => {
    for (let step = 0; step < candidates.length; step++) {
      const deployment = candidates[(cursor + step) % candidates.length]!;
      if (refused.has(deployment.id)) continue;
      cursor += step + 1;
      return deployment;
    }
    return undefined;
  };
  for (let attempt = 1; attempt <= routing.maxAttempts; attempt++) {
    const deployment = nextCandidate();
    if (!deployment) throw notExpressible(refused, attempt - 1);
    if (attempt > 1) {
      // A different deployment is tried at once; the same one again only after a backoff.
      const sameAgain = deployment.id === lastDeployment?.id;
      const delay = sameAgain
        ? retryDelayMs(
            attempt - 1,
            { baseMs: routing.retryBaseMs, maxMs: routing.retryMaxMs },
            lastFailure?.retryAfterMs,
          )
        : 0;
      if (performance.now() + delay >= deadline - LAST_ATTEMPT_MIN_MS) break;
      if (delay > 0) await sleep(delay, ctx.signal);
    }
    if (callerGone(ctx)) throw new UpstreamFailure('aborted', 'the caller went away');
    used = attempt;
    const breaker = router.breaker(deployment.id);
    if (!breaker.tryAcquire(Date.now())) {
      // Skipped, not failed: keep the last real failure so the caller sees what the providers said.
      lastFailure ??= new UpstreamFailure(
        'connection',
        `deployment ${deployment.id} is cooling down after repeated failures`,
      );
      lastDeployment = undefined;
      continue;
    }
    const controller = new LazyAbort();
    const remaining = Math.max(1, Math.min(routing.attemptTimeoutMs, deadline - performance.now()));
    const timer = setTimeout(() => controller.abort(timeoutReason()), remaining);
    const stopListening = onCallerGone(ctx, () => controller.abort(ctx.signal.reason));
    const started = performance.now();
    try {
      const value = await call(router.client(deployment), deployment, controller);
      const seconds = (performance.now() - started) / 1000;
      breaker.onSuccess();
      router.latency.record(deployment.id, seconds * 1000);
      metrics.upstream({ deployment: deployment.id, outcome: 'ok' }, seconds);
      clearTimeout(timer);
      return { value, deployment, attempts: attempt, controller };
    } catch (error) {
      clearTimeout(timer);
      stopListening();
      if (error instanceof UnsupportedRequest) {
        breaker.release();
        refused.set(deployment.id, error);
        attempt--;
        continue;
      }
      const failure =
        error instanceof UpstreamFailure
          ? error
          : new UpstreamFailure('connection', (error as Error).message);
      metrics.upstream(
        { deployment: deployment.id, outcome: 'error', errorKind: failure.kind },
        (performance.now() - started) / 1000,
      );
      if (failure.kind === 'aborted') {
        breaker.release();
        throw failure;
      }
      if (!failure.fallbackable) {
        // The caller's own error (a 400, 413, 422...): the deployment is not at fault, so it does not
        // count against its breaker, which would otherwise let one caller's bad requests close a model
        // to everyone. Nor does it count as a success: a request refused while being validated proves
        // nothing about the deployment's ability to answer, and resetting the run of failures would let
        // bad requests keep a failing deployment's breaker from ever opening. A half-open probe that
        // ends so is released, and the next request probes instead.
        breaker.release();
        throw toAppError(failure, attempt);
      }
      // The same classification that sends the request elsewhere (429, 5xx, 401/403/404, timeouts,
      // broken connections and garbage answers) says the deployment is unwell: it counts against it.
      breaker.onFailure(Date.now());
      lastFailure = failure;
      lastDeployment = deployment;
    }
  }
  throw toAppError(lastFailure ?? new UpstreamFailure('timeout', 'the request ran out of time'), used);
}

/**
 * One attempt's call to a provider. The client gets the attempt's cancellation as such; its
 * AbortSignal is made only if the client reads `signal` (streams do, a non-streamed HTTP call does not).
 */
export function upstreamCall<R>(abort: LazyAbort, request: R, model: string): UpstreamCall<R> {
  return {
    request,
    model,
    cancel: abort,
    get signal(): AbortSignal {
      return abort.signal;
    },
  };
}

/** Every candidate refused the request before it was sent: the caller's 400, naming who refused what. */
function notExpressible(refused: ReadonlyMap<string, UnsupportedRequest>, attempts: number): AppError {
  const entries = [...refused.entries()];
  const reasons = entries.map(([id, error]) => `deployment ${id} (${error.provider}): ${error.message}`);
  const param = entries[0]?.[1].param;
  const lead =
    entries.length === 1
      ? 'The request cannot be sent to the only deployment that serves this model'
      : `The request cannot be sent to any of the ${entries.length} deployments that serve this model`;
  return new AppError('invalid_request', `${lead}: ${reasons.join('; ')}`, {
    ...(param !== undefined ? { param } : {}),
    details: { attempts, deployments: entries.map(([id]) => id) },
  });
}

async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/** The error a caller sees once routing gives up. Provider messages are scrubbed of anything secret. */
export function toAppError(failure: UpstreamFailure, attempts: number): AppError {
  const error = mapFailure(failure, attempts);
  return new AppError(error.code, error.message, {
    ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
    details: { attempts },
  });
}

function mapFailure(failure: UpstreamFailure, attempts: number): AppError {
  const detail = scrubSecrets(failure.message);
  const tries = attempts === 1 ? '' : ` after ${attempts} attempts`;
  if (failure.kind === 'timeout')
    return new AppError('upstream_timeout', `The model provider did not answer in time${tries}: ${detail}`);
  if (failure.kind === 'http') {
    const status = failure.status ?? 502;
    if (status === 429) {
      return new AppError('rate_limited', `The model provider is rate limiting requests${tries}: ${detail}`, {
        ...(failure.retryAfterMs !== undefined
          ? { retryAfterSeconds: Math.ceil(failure.retryAfterMs / 1000) }
          : {}),
      });
    }
    if (status === 400 || status === 413 || status === 422) {
      return new AppError('invalid_request', `The model provider rejected the request: ${detail}`);
    }
  }
  if (failure.kind === 'bad_response')
    return new AppError(
      'upstream_bad_response',
      `The model provider sent an invalid answer${tries}: ${detail}`,
    );
  return new AppError('upstream_error', `The model provider failed${tries}: ${detail}`);
}

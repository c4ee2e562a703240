import type { RoutingConfig } from '@flowloom/config';
import type { CloudEvent } from '@flowloom/contracts';
import { AppError, httpStatusOf, isAppError } from '@flowloom/errors';
import {
  type ChatRequest,
  type ChatResponse,
  emptyUsage,
  mergeUsage,
  type StreamEvent,
  UpstreamFailure,
  type Usage,
} from '@flowloom/providers';
import { cacheWritesOf, reservationPrice, worstCaseMicros } from '../domain/budget.js';
import { inputTokensBound, textQuarterTokens } from '../domain/input-tokens.js';
import { assertModelAllowed } from '../domain/keys.js';
import { costOf } from '../domain/prices.js';
import { type Deployment, filterCapable, type Route, requiredCapabilities } from '../domain/routing.js';
import type { GatewayMetrics } from '../ports/metrics.js';
import type { Outbox } from '../ports/outbox.js';
import { timeoutReason, toAppError, upstreamCall, withFallback } from './attempts.js';
import type { RequestContext } from './context.js';
import { completedEvent, failedEvent, requestFields } from './events.js';
import { type Hold, type Limiter, settleAfterCall } from './limits.js';
import {
  answerFacts,
  isUpstreamFailure,
  promptText,
  redactChat,
  rerouted,
  toolCallDepth,
} from './policy-actions.js';
import type { Admission, GateHooks, PolicyGate } from './policy-gate.js';
import type { Router } from './router.js';

/** What an entry point passes along besides the request: headers a policy may read, decision hooks. */
export interface CallOptions extends GateHooks {
  headers?: Readonly<Record<string, string | string[] | undefined>>;
}

const NO_OPTIONS: CallOptions = {};

export interface ChatResult {
  response: ChatResponse;
  deployment: Deployment;
  attempts: number;
  costUsd: number;
  /** The policy decision on this request, when a policy is active. */
  decisionId?: string;
}

export interface ChatStream {
  deployment: Deployment;
  attempts: number;
  /** Canonical events; the event is durably recorded before the generator finishes. */
  events: AsyncGenerator<StreamEvent, void, undefined>;
  /** Total usage so far (exact once the generator has finished). */
  usage(): Usage;
  decisionId?: string;
}

/**
 * The input a request sends, bounded from above (`inputTokensBound`). Routing, the policy gate and the
 * budget hold each ask about the same request: it is counted once.
 */
export function estimateInputTokens(request: ChatRequest): number {
  let tokens = estimates.get(request);
  if (tokens === undefined) {
    tokens = inputTokensBound(request);
    estimates.set(request, tokens);
  }
  return tokens;
}

const estimates = new WeakMap<ChatRequest, number>();

/** The chat use case: authorize the model, route with fallback, meter, and record the outcome. */
export class ChatService {
  constructor(
    private readonly router: Router,
    private readonly routing: RoutingConfig,
    private readonly outbox: Outbox,
    private readonly metrics: GatewayMetrics,
    private readonly limiter: Limiter,
    private readonly gate?: PolicyGate,
  ) {}

  private hold(ctx: RequestContext, request: ChatRequest, candidates: readonly Deployment[]): Promise<Hold> {
    return this.limiter.acquire(
      ctx,
      estimateInputTokens(request),
      request.maxTokens ?? this.defaultAllowance(request, candidates),
      this.reservationPrices(request, candidates),
    );
  }

  /**
   * The output allowance of a request without max_tokens: `defaultMaxOutputTokens`, plus an Anthropic
   * thinking budget (thinking counts towards max_tokens), at most the smallest `maxOutputTokens` of
   * the deployments it may go to, so every one of them accepts it.
   */
  private defaultAllowance(request: ChatRequest, deployments: readonly Deployment[]): number {
    let allowance =
      this.limiter.defaultMaxOutputTokens +
      (request.reasoning?.type === 'budget' ? request.reasoning.budgetTokens : 0);
    for (const d of deployments)
      if (d.maxOutputTokens !== undefined) allowance = Math.min(allowance, d.maxOutputTokens);
    return allowance;
  }

  /**
   * A request a budget applies to goes out bounded by the output reserved for it: without max_tokens
   * it gets the default allowance as its max_tokens, so no provider can bill more output than was
   * reserved. A caller's own max_tokens is never changed.
   */
  private bounded(ctx: RequestContext, request: ChatRequest, candidates: readonly Deployment[]): ChatRequest {
    if (request.maxTokens !== undefined || !this.limiter.budgetApplies(ctx)) return request;
    return { ...request, maxTokens: this.defaultAllowance(request, candidates) };
  }

  /** Each deployment's price as a worst-case estimate sees it (cache writes included). */
  private reservationPrices(request: ChatRequest, deployments: readonly Deployment[]) {
    const writes = cacheWritesOf(request);
    return deployments.map((d) => reservationPrice(this.router.priceOf(d), writes));
  }

  private plan(route: Route, request: ChatRequest): Deployment[] {
    const capable = filterCapable(route, requiredCapabilities(request), estimateInputTokens(request));
    return this.router.order(route, capable);
  }

  /** Asks the policies about a request the key may send; refusals throw (and are recorded) there. */
  private async admit(
    ctx: RequestContext,
    request: ChatRequest,
    route: Route,
    options: CallOptions,
  ): Promise<Admission | undefined> {
    const gate = this.gate;
    if (!gate || (!gate.enabled && ctx.tags.job === undefined)) return undefined;
    const first = route.deployments[0];
    const estimated = estimateInputTokens(request);
    return gate.admit(
      ctx,
      {
        operation: 'chat',
        model: request.model,
        stream: request.stream,
        estimatedTokens: estimated,
        costEstimateUsd:
          worstCaseMicros(
            estimated,
            request.maxTokens ?? this.defaultAllowance(request, route.deployments),
            this.reservationPrices(request, route.deployments),
          ) / 1_000_000,
        toolsCount: request.tools?.length ?? 0,
        toolCallDepth: toolCallDepth(request),
        prompt: () => promptText(request),
        ...(first ? { provider: first.provider } : {}),
        ...(first?.region ? { region: first.region } : {}),
        ...(request.maxTokens !== undefined ? { maxTokens: request.maxTokens } : {}),
        ...(options.headers ? { headers: options.headers } : {}),
      },
      options,
    );
  }

  /**
   * The key check, the policy decision and what it says done to the request that goes out
   * (redacted, capped) and to its route (rerouted), then the fallback order of deployments.
   */
  private async prepare(
    ctx: RequestContext,
    original: ChatRequest,
    options: CallOptions,
    admitted: (admission: Admission | undefined) => void,
  ): Promise<{ request: ChatRequest; candidates: Deployment[] }> {
    assertModelAllowed(ctx.key, original.model);
    let route = this.router.resolve(original.model);
    const admission = await this.admit(ctx, original, route, options);
    admitted(admission);
    let request = original;
    if (admission) {
      if (admission.redactions.length > 0) {
        const redacted = redactChat(request, admission.redactions);
        admission.noteRedactions(redacted.count);
        request = redacted.request;
      }
      const cap = admission.capMaxTokens;
      if (cap !== undefined && (request.maxTokens ?? Number.POSITIVE_INFINITY) > cap)
        request = { ...request, maxTokens: cap };
      if (admission.reroute) route = rerouted(this.router, route, admission.reroute, 'A policy reroute');
    }
    return { request, candidates: this.plan(route, request) };
  }

  async complete(
    ctx: RequestContext,
    original: ChatRequest,
    options: CallOptions = NO_OPTIONS,
  ): Promise<ChatResult> {
    this.outbox.ensureWritable?.();
    let attempts = 0;
    let hold: Hold | undefined;
    let admission: Admission | undefined;
    let request = original;
    try {
      const plan = await this.prepare(ctx, original, options, (a) => {
        admission = a;
      });
      const candidates = plan.candidates;
      request = this.bounded(ctx, plan.request, candidates);
      hold = await this.hold(ctx, request, candidates);
      const result = await withFallback(
        ctx,
        candidates,
        this.router,
        this.routing,
        this.metrics,
        (client, d, abort) => client.chat(upstreamCall(abort, request, d.model)),
      );
      attempts = result.attempts;
      const { value: response, deployment } = result;
      const costUsd = costOf(response.usage, this.router.priceOf(deployment));
      this.meter(original.model, deployment, response.usage, costUsd);
      const tokens = response.usage.inputTokens + response.usage.outputTokens;
      const settling = settleAfterCall(hold, costUsd, tokens);
      hold = undefined;
      await admission?.finish({
        costUsd,
        tokens,
        failed: false,
        answer: answerFacts(response.usage, costUsd, 'completed', response.finishReason, false),
      });
      await this.outbox.append([
        completedEvent(
          ctx,
          requestFields(ctx, 'chat', original.model, false, attempts, {
            provider: deployment.provider,
            deployment: deployment.id,
            providerModel: deployment.model,
            usage: response.usage,
            costUsd,
            finishReason: response.finishReason,
          }),
        ),
        ...(admission?.takeEvents() ?? []),
      ]);
      await settling;
      return {
        response,
        deployment,
        attempts,
        costUsd,
        ...(ctx.decisionId ? { decisionId: ctx.decisionId } : {}),
      };
    } catch (error) {
      if (hold) await settleAfterCall(hold, 0, 0);
      await admission?.finish({ costUsd: 0, tokens: 0, failed: isUpstreamFailure(error) });
      await this.recordFailure(ctx, original, false, attempts, error, admission?.takeEvents() ?? []);
      throw asAppError(error);
    }
  }

  /**
   * Opens a stream: resolves once the first event arrived, so a provider that fails before sending
   * anything is still replaced by the next deployment. After that, errors reach the caller mid-stream.
   */
  async stream(
    ctx: RequestContext,
    original: ChatRequest,
    options: CallOptions = NO_OPTIONS,
  ): Promise<ChatStream> {
    this.outbox.ensureWritable?.();
    let opened: Awaited<
      ReturnType<
        typeof withFallback<{
          iterator: AsyncGenerator<StreamEvent, void, undefined>;
          first: IteratorResult<StreamEvent, void>;
        }>
      >
    >;
    let hold: Hold | undefined;
    let admission: Admission | undefined;
    let request = original;
    try {
      const plan = await this.prepare(ctx, original, options, (a) => {
        admission = a;
      });
      const candidates = plan.candidates;
      request = this.bounded(ctx, plan.request, candidates);
      hold = await this.hold(ctx, request, candidates);
      const sent = request;
      opened = await withFallback(
        ctx,
        candidates,
        this.router,
        this.routing,
        this.metrics,
        async (client, d, abort) => {
          const iterator = client.chatStream(upstreamCall(abort, sent, d.model));
          const first = await iterator.next();
          return { iterator, first };
        },
      );
    } catch (error) {
      if (hold) await settleAfterCall(hold, 0, 0);
      await admission?.finish({ costUsd: 0, tokens: 0, failed: isUpstreamFailure(error) });
      await this.recordFailure(ctx, original, true, 0, error, admission?.takeEvents() ?? []);
      throw asAppError(error);
    }
    const streamHold = hold;
    const streamAdmission = admission;
    const streamed = request;
    const { deployment, attempts, controller } = opened;
    const { iterator, first } = opened.value;
    let usage = emptyUsage();
    let sawUsage = false;
    let streamedQuarters = 0;
    let finishReason: string | undefined;
    let firstTokenAt: number | undefined;
    const idleMs = this.routing.attemptTimeoutMs;
    let idle = setTimeout(() => controller.abort(timeoutReason()), idleMs);

    const observe = (event: StreamEvent): void => {
      if (event.type === 'usage') {
        usage = mergeUsage(usage, event.usage);
        sawUsage = true;
      } else if (event.type === 'text' || event.type === 'tool_call_delta') {
        streamedQuarters += textQuarterTokens(event.type === 'text' ? event.delta : event.argumentsDelta);
        firstTokenAt ??= performance.now();
      } else if (event.type === 'finish') finishReason = event.finishReason;
    };
    // A provider that streams no usage (some OpenAI-compatible servers) is metered by estimate, never as zero.
    // Nor is a stream cut short: providers report the output tokens at the end (OpenAI's last chunk,
    // Anthropic's message_delta), so a caller leaving just before it has still been sent what was streamed.
    const streamedOutput = () => Math.ceil(streamedQuarters / 4);
    const finalUsage = (complete: boolean): Usage => {
      if (!sawUsage || usage.inputTokens + usage.outputTokens === 0)
        return {
          inputTokens: estimateInputTokens(streamed),
          outputTokens: streamedOutput(),
          cachedInputTokens: 0,
        };
      if (complete || usage.outputTokens >= streamedOutput()) return usage;
      return { ...usage, outputTokens: streamedOutput() };
    };

    const self = this;
    async function* events(): AsyncGenerator<StreamEvent, void, undefined> {
      let outcome: 'done' | 'failed' | 'cancelled' = 'cancelled';
      let failure: unknown;
      try {
        if (!first.done) {
          observe(first.value);
          yield first.value;
        }
        for (;;) {
          const next = await iterator.next();
          if (next.done) break;
          clearTimeout(idle);
          idle = setTimeout(() => controller.abort(timeoutReason()), idleMs);
          observe(next.value);
          yield next.value;
        }
        outcome = 'done';
      } catch (error) {
        // The caller going away aborts the upstream call first; that is a cancellation, not a provider failure.
        const callerGone =
          ctx.signal.aborted || (error instanceof UpstreamFailure && error.kind === 'aborted');
        outcome = callerGone ? 'cancelled' : 'failed';
        failure = error;
        throw asAppError(error instanceof UpstreamFailure ? toAppError(error, attempts) : error);
      } finally {
        clearTimeout(idle);
        if (outcome !== 'done') {
          controller.abort();
          await iterator.return(undefined).catch(() => {});
        }
        const reported = usage;
        usage = finalUsage(outcome === 'done');
        const costUsd = costOf(usage, self.router.priceOf(deployment));
        self.meter(original.model, deployment, usage, costUsd);
        const settling = settleAfterCall(streamHold, costUsd, usage.inputTokens + usage.outputTokens);
        await streamAdmission?.finish({
          costUsd,
          tokens: usage.inputTokens + usage.outputTokens,
          failed: outcome === 'failed' && isUpstreamFailure(failure),
          // Cut short or not, the usage so far is what the post-call rules see (status says which).
          answer: answerFacts(
            usage,
            costUsd,
            outcome === 'done' ? 'completed' : outcome,
            finishReason,
            usage !== reported,
          ),
        });
        const decisionEvents = streamAdmission?.takeEvents() ?? [];
        if (firstTokenAt !== undefined)
          self.metrics.timeToFirstToken({ deployment: deployment.id }, (firstTokenAt - ctx.startedAt) / 1000);
        if (outcome === 'done') {
          await self.outbox.append([
            completedEvent(
              ctx,
              requestFields(ctx, 'chat', original.model, true, attempts, {
                provider: deployment.provider,
                deployment: deployment.id,
                providerModel: deployment.model,
                usage,
                costUsd,
                ...(finishReason ? { finishReason } : {}),
                ...(firstTokenAt !== undefined
                  ? { timeToFirstTokenMs: Math.round((firstTokenAt - ctx.startedAt) * 1000) / 1000 }
                  : {}),
                ...(sawUsage ? {} : { usageEstimated: true }),
              }),
            ),
            ...decisionEvents,
          ]);
        } else {
          const error =
            outcome === 'cancelled'
              ? new AppError(
                  'invalid_request',
                  'The caller closed the connection before the stream finished.',
                )
              : asAppError(failure instanceof UpstreamFailure ? toAppError(failure, attempts) : failure);
          await self.outbox.append([
            failedEvent(
              ctx,
              requestFields(ctx, 'chat', original.model, true, attempts, {
                errorCode: outcome === 'cancelled' ? 'client_closed' : error.code,
                errorMessage: error.message,
                httpStatus: outcome === 'cancelled' ? 499 : httpStatusOf(error),
                provider: deployment.provider,
                deployment: deployment.id,
                usage,
                costUsd,
              }),
            ),
            ...decisionEvents,
          ]);
        }
        await settling;
      }
    }
    return {
      deployment,
      attempts,
      events: events(),
      usage: () => usage,
      ...(ctx.decisionId ? { decisionId: ctx.decisionId } : {}),
    };
  }

  private meter(model: string, deployment: Deployment, usage: Usage, costUsd: number): void {
    const labels = { model, deployment: deployment.id };
    this.metrics.tokens(labels, usage);
    this.metrics.cost(labels, costUsd);
  }

  private async recordFailure(
    ctx: RequestContext,
    request: ChatRequest,
    stream: boolean,
    attempts: number,
    error: unknown,
    decisionEvents: readonly CloudEvent[] = [],
  ): Promise<void> {
    if (error instanceof UpstreamFailure && error.kind === 'aborted') {
      // The caller left before an answer: recorded as such, so the audit trail shows the attempt.
      await this.outbox.append([
        failedEvent(
          ctx,
          requestFields(ctx, 'chat', request.model, stream, attempts, {
            errorCode: 'client_closed',
            errorMessage: 'The caller closed the connection before the answer.',
            httpStatus: 499,
          }),
        ),
        ...decisionEvents,
      ]);
      return;
    }
    const appError = asAppError(error);
    const tried = typeof appError.details?.attempts === 'number' ? appError.details.attempts : attempts;
    await this.outbox.append([
      failedEvent(
        ctx,
        requestFields(ctx, 'chat', request.model, stream, tried, {
          errorCode: appError.code,
          errorMessage: appError.message,
          httpStatus: httpStatusOf(appError),
        }),
      ),
      ...decisionEvents,
    ]);
  }
}

export function asAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  if (error instanceof UpstreamFailure) return toAppError(error, 1);
  return new AppError('internal', 'Internal error. Retry later; if it persists, report the request id.', {
    cause: error,
  });
}

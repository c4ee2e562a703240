import type { RoutingConfig } from '@flowloom/config';
import { httpStatusOf } from '@flowloom/errors';
import { type EmbeddingsRequest, type EmbeddingsResponse, UpstreamFailure } from '@flowloom/providers';
import { textTokensBound } from '../domain/input-tokens.js';
import { assertModelAllowed } from '../domain/keys.js';
import { costOf } from '../domain/prices.js';
import type { Deployment } from '../domain/routing.js';
import type { GatewayMetrics } from '../ports/metrics.js';
import type { Outbox } from '../ports/outbox.js';
import { upstreamCall, withFallback } from './attempts.js';
import { asAppError, type CallOptions } from './chat.js';
import type { RequestContext } from './context.js';
import { baseFields, completedEvent, failedEvent } from './events.js';
import { type Hold, type Limiter, settleAfterCall } from './limits.js';
import { answerFacts, isUpstreamFailure, redactInputs, rerouted } from './policy-actions.js';
import type { Admission, PolicyGate } from './policy-gate.js';
import type { Router } from './router.js';

export class EmbeddingsService {
  constructor(
    private readonly router: Router,
    private readonly routing: RoutingConfig,
    private readonly outbox: Outbox,
    private readonly metrics: GatewayMetrics,
    private readonly limiter: Limiter,
    private readonly gate?: PolicyGate,
  ) {}

  async embed(
    ctx: RequestContext,
    original: EmbeddingsRequest,
    options: CallOptions = {},
  ): Promise<{
    response: EmbeddingsResponse;
    deployment: Deployment;
    attempts: number;
    decisionId?: string;
  }> {
    this.outbox.ensureWritable?.();
    let attempts = 0;
    let hold: Hold | undefined;
    let admission: Admission | undefined;
    let request = original;
    try {
      assertModelAllowed(ctx.key, request.model);
      let route = this.router.resolve(request.model);
      const inputTokens = request.input.reduce((n, text) => n + textTokensBound(text), 0);
      const gate = this.gate;
      if (gate && (gate.enabled || ctx.tags.job !== undefined)) {
        const first = route.deployments[0];
        admission = await gate.admit(
          ctx,
          {
            operation: 'embeddings',
            model: request.model,
            stream: false,
            estimatedTokens: inputTokens,
            prompt: () => request.input.join('\n'),
            ...(first ? { provider: first.provider } : {}),
            ...(first?.region ? { region: first.region } : {}),
            ...(options.headers ? { headers: options.headers } : {}),
          },
          options,
        );
        if (admission.redactions.length > 0) {
          const redacted = redactInputs(request.input, admission.redactions);
          admission.noteRedactions(redacted.count);
          request = { ...request, input: redacted.input };
        }
        if (admission.reroute) route = rerouted(this.router, route, admission.reroute, 'A policy reroute');
      }
      const candidates = this.router.order(route, route.deployments);
      hold = await this.limiter.acquire(
        ctx,
        inputTokens,
        0,
        candidates.map((d) => this.router.priceOf(d)),
      );
      const result = await withFallback(
        ctx,
        candidates,
        this.router,
        this.routing,
        this.metrics,
        (client, d, abort) => client.embeddings(upstreamCall(abort, request, d.model)),
      );
      attempts = result.attempts;
      const usage = { inputTokens: result.value.usage.inputTokens, outputTokens: 0, cachedInputTokens: 0 };
      const costUsd = costOf(usage, this.router.priceOf(result.deployment));
      this.metrics.tokens({ model: request.model, deployment: result.deployment.id }, usage);
      this.metrics.cost({ model: request.model, deployment: result.deployment.id }, costUsd);
      const settling = settleAfterCall(hold, costUsd, usage.inputTokens);
      hold = undefined;
      await admission?.finish({
        costUsd,
        tokens: usage.inputTokens,
        failed: false,
        answer: answerFacts(usage, costUsd, 'completed', undefined, false),
      });
      await this.outbox.append([
        completedEvent(ctx, {
          ...baseFields(ctx, 'embeddings', original.model, false, attempts),
          provider: result.deployment.provider,
          deployment: result.deployment.id,
          providerModel: result.deployment.model,
          usage,
          costUsd,
        }),
        ...(admission?.takeEvents() ?? []),
      ]);
      await settling;
      return {
        response: result.value,
        deployment: result.deployment,
        attempts,
        ...(ctx.decisionId ? { decisionId: ctx.decisionId } : {}),
      };
    } catch (error) {
      if (hold) await settleAfterCall(hold, 0, 0);
      await admission?.finish({ costUsd: 0, tokens: 0, failed: isUpstreamFailure(error) });
      const decisionEvents = admission?.takeEvents() ?? [];
      if (!(error instanceof UpstreamFailure && error.kind === 'aborted')) {
        const appError = asAppError(error);
        const tried = typeof appError.details?.attempts === 'number' ? appError.details.attempts : attempts;
        await this.outbox.append([
          failedEvent(ctx, {
            ...baseFields(ctx, 'embeddings', original.model, false, tried),
            errorCode: appError.code,
            errorMessage: appError.message,
            httpStatus: httpStatusOf(appError),
          }),
          ...decisionEvents,
        ]);
      } else if (decisionEvents.length > 0) {
        await this.outbox.append(decisionEvents);
      }
      throw asAppError(error);
    }
  }
}

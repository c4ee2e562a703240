import type { RoutingConfig } from '@flowloom/config';
import { httpStatusOf } from '@flowloom/errors';
import { type EmbeddingsRequest, type EmbeddingsResponse, UpstreamFailure } from '@flowloom/providers';
import { assertModelAllowed } from '../domain/keys.js';
import { costOf } from '../domain/prices.js';
import type { Deployment } from '../domain/routing.js';
import type { GatewayMetrics } from '../ports/metrics.js';
import type { Outbox } from '../ports/outbox.js';
import { withFallback } from './attempts.js';
import { asAppError } from './chat.js';
import type { RequestContext } from './context.js';
import { baseFields, completedEvent, failedEvent } from './events.js';
import type { Hold, Limiter } from './limits.js';
import type { Router } from './router.js';

export class EmbeddingsService {
  constructor(
    private readonly router: Router,
    private readonly routing: RoutingConfig,
    private readonly outbox: Outbox,
    private readonly metrics: GatewayMetrics,
    private readonly limiter: Limiter,
  ) {}

  async embed(
    ctx: RequestContext,
    request: EmbeddingsRequest,
  ): Promise<{ response: EmbeddingsResponse; deployment: Deployment; attempts: number }> {
    let attempts = 0;
    let hold: Hold | undefined;
    try {
      assertModelAllowed(ctx.key, request.model);
      const route = this.router.resolve(request.model);
      const candidates = this.router.order(route, route.deployments);
      const inputTokens = request.input.reduce((n, text) => n + Math.ceil(text.length / 4), 0);
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
        (client, d, signal) => client.embeddings({ request, model: d.model, signal }),
      );
      attempts = result.attempts;
      const usage = { inputTokens: result.value.usage.inputTokens, outputTokens: 0, cachedInputTokens: 0 };
      const costUsd = costOf(usage, this.router.priceOf(result.deployment));
      this.metrics.tokens(
        { model: request.model, deployment: result.deployment.id },
        usage.inputTokens,
        0,
        0,
      );
      this.metrics.cost({ model: request.model, deployment: result.deployment.id }, costUsd);
      const settling = hold.settle(costUsd, usage.inputTokens);
      hold = undefined;
      await settling;
      await this.outbox.append([
        completedEvent(ctx, {
          ...baseFields(ctx, 'embeddings', request.model, false, attempts),
          provider: result.deployment.provider,
          deployment: result.deployment.id,
          providerModel: result.deployment.model,
          usage,
          costUsd,
        }),
      ]);
      return { response: result.value, deployment: result.deployment, attempts };
    } catch (error) {
      await hold?.settle(0, 0);
      if (!(error instanceof UpstreamFailure && error.kind === 'aborted')) {
        const appError = asAppError(error);
        const tried = typeof appError.details?.attempts === 'number' ? appError.details.attempts : attempts;
        await this.outbox.append([
          failedEvent(ctx, {
            ...baseFields(ctx, 'embeddings', request.model, false, tried),
            errorCode: appError.code,
            errorMessage: appError.message,
            httpStatus: httpStatusOf(appError),
          }),
        ]);
      }
      throw asAppError(error);
    }
  }
}

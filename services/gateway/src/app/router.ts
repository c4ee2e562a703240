import type { Config } from '@flowloom/config';
import { AppError } from '@flowloom/errors';
import type { ProviderClient } from '@flowloom/providers';
import { CircuitBreaker } from '../domain/circuit-breaker.js';
import { DEFAULT_PRICES, findPrice, type Price } from '../domain/prices.js';
import {
  type Deployment,
  LatencyTracker,
  orderDeployments,
  type Route,
  resolveRoute,
} from '../domain/routing.js';

/**
 * Routing state of one gateway process: the provider clients, a circuit breaker and a latency
 * average per deployment, and the price table.
 */
export class Router {
  private readonly breakers = new Map<string, CircuitBreaker>();
  readonly latency = new LatencyTracker();
  readonly prices: Readonly<Record<string, Price>>;

  constructor(
    private readonly config: Pick<Config, 'models' | 'providers' | 'routing' | 'prices'>,
    private readonly clients: ReadonlyMap<string, ProviderClient>,
    private readonly localModels: readonly string[],
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {
    this.prices = { ...DEFAULT_PRICES, ...config.prices };
  }

  resolve(model: string): Route {
    return resolveRoute(model, this.config, this.localModels);
  }

  /** Candidates in fallback order; deployments whose breaker is open go last rather than vanish. */
  order(route: Route, candidates: readonly Deployment[]): Deployment[] {
    const ordered = orderDeployments(route, candidates, {
      latencyMs: (id) => this.latency.get(id),
      prices: this.prices,
      random: this.random,
    });
    const now = this.now();
    const healthy = ordered.filter((d) => this.breaker(d.id).isAvailable(now));
    return healthy.length > 0 ? [...healthy, ...ordered.filter((d) => !healthy.includes(d))] : ordered;
  }

  client(deployment: Deployment): ProviderClient {
    const client = this.clients.get(deployment.provider);
    if (!client)
      throw new AppError('no_deployment_available', `Provider '${deployment.provider}' is not configured.`);
    return client;
  }

  breaker(deploymentId: string): CircuitBreaker {
    let breaker = this.breakers.get(deploymentId);
    if (!breaker) {
      breaker = new CircuitBreaker(this.config.routing.circuitBreaker);
      this.breakers.set(deploymentId, breaker);
    }
    return breaker;
  }

  priceOf(deployment: Deployment): Price | undefined {
    return deployment.price ?? findPrice(deployment.model, this.prices);
  }

  /** Every name a caller may ask for: aliases, local models and the patterns of direct providers. */
  listModels(): Array<{ id: string; ownedBy: string }> {
    const out = Object.keys(this.config.models).map((id) => ({ id, ownedBy: 'flowloom' }));
    for (const id of this.localModels) out.push({ id, ownedBy: 'flowloom-local' });
    for (const [name, provider] of Object.entries(this.config.providers)) {
      for (const pattern of provider.models ?? [])
        if (!pattern.includes('*')) out.push({ id: pattern, ownedBy: name });
    }
    return out;
  }
}

import type { Capability, Config, DeploymentConfig, ProviderConfig } from '@flowloom/config';
import { AppError } from '@flowloom/errors';
import type { ChatRequest } from '@flowloom/providers';
import { findPrice, type Price } from './prices.js';

export const LOCAL_PROVIDER = 'local';

/** One place a request can be sent: a provider account plus the provider's model name. */
export interface Deployment {
  /** Stable id used in headers, metrics and events: `provider/model` (plus `@region`). */
  id: string;
  provider: string;
  model: string;
  region?: string;
  weight: number;
  price?: Price;
  capabilities?: readonly Capability[];
  contextWindow?: number;
  /** The most output tokens the model accepts (`maxOutputTokens` in its deployment config). */
  maxOutputTokens?: number;
}

export interface Route {
  /** The name the caller asked for. */
  alias: string;
  strategy: 'priority' | 'weighted' | 'latency' | 'cost';
  deployments: Deployment[];
}

function toDeployment(d: DeploymentConfig | { provider: string; model: string }): Deployment {
  const full = d as Partial<DeploymentConfig> & { provider: string; model: string };
  return {
    id: `${d.provider}/${d.model}${full.region ? `@${full.region}` : ''}`,
    provider: d.provider,
    model: d.model,
    weight: full.weight ?? 1,
    ...(full.region ? { region: full.region } : {}),
    ...(full.price ? { price: full.price } : {}),
    ...(full.capabilities ? { capabilities: full.capabilities } : {}),
    ...(full.contextWindow ? { contextWindow: full.contextWindow } : {}),
    ...(full.maxOutputTokens ? { maxOutputTokens: full.maxOutputTokens } : {}),
  };
}

const patternCache = new Map<string, RegExp>();

function matches(pattern: string, model: string): boolean {
  if (!pattern.includes('*')) return pattern === model;
  let re = patternCache.get(pattern);
  if (!re) {
    re = new RegExp(
      `^${pattern
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    patternCache.set(pattern, re);
  }
  return re.test(model);
}

/**
 * Resolves a requested model name: a configured alias first, then `provider/model`, then a provider
 * whose `models` patterns match, then the built-in local models. Unknown names are a 404.
 */
export function resolveRoute(
  model: string,
  config: Pick<Config, 'models' | 'providers'>,
  localModels: readonly string[],
): Route {
  // Own properties only: a model named `constructor` must not resolve to Object's prototype.
  const alias = Object.hasOwn(config.models, model) ? config.models[model] : undefined;
  if (alias)
    return { alias: model, strategy: alias.strategy, deployments: alias.deployments.map(toDeployment) };
  const slash = model.indexOf('/');
  if (slash > 0) {
    const provider = model.slice(0, slash);
    if (Object.hasOwn(config.providers, provider) || provider === LOCAL_PROVIDER) {
      return {
        alias: model,
        strategy: 'priority',
        deployments: [toDeployment({ provider, model: model.slice(slash + 1) })],
      };
    }
  }
  const direct = Object.entries(config.providers)
    .filter(([, p]: [string, ProviderConfig]) => (p.models ?? []).some((pattern) => matches(pattern, model)))
    .map(([name]) => toDeployment({ provider: name, model }));
  if (direct.length > 0) return { alias: model, strategy: 'priority', deployments: direct };
  if (localModels.includes(model)) {
    return {
      alias: model,
      strategy: 'priority',
      deployments: [toDeployment({ provider: LOCAL_PROVIDER, model })],
    };
  }
  throw new AppError(
    'model_not_found',
    `The model '${model}' does not exist or is not routed by this gateway. GET /v1/models lists the available models.`,
    {
      param: 'model',
    },
  );
}

/** What a chat request needs from a deployment. */
export function requiredCapabilities(request: ChatRequest): Capability[] {
  const needs: Capability[] = [];
  if (request.tools && request.tools.length > 0) needs.push('tools');
  if (request.messages.some((m) => m.role === 'user' && m.content.some((p) => p.type === 'image')))
    needs.push('vision');
  if (request.responseFormat && request.responseFormat.type !== 'text') needs.push('json');
  if (request.stream) needs.push('streaming');
  return needs;
}

/** Deployments that declare capabilities must list every needed one; undeclared means capable. */
export function filterCapable(
  route: Route,
  needs: readonly Capability[],
  estimatedTokens: number,
): Deployment[] {
  const capable = route.deployments.filter(
    (d) =>
      (!d.capabilities || needs.every((n) => d.capabilities?.includes(n))) &&
      (d.contextWindow === undefined || estimatedTokens <= d.contextWindow),
  );
  if (capable.length === 0) {
    throw new AppError(
      'invalid_request',
      `No deployment of '${route.alias}' supports this request (needs: ${needs.join(', ') || 'none'}, ~${estimatedTokens} tokens).`,
      { param: 'model' },
    );
  }
  return capable;
}

export interface OrderingInputs {
  /** Moving-average latency per deployment id, in ms; unknown deployments sort first so they get measured. */
  latencyMs(deploymentId: string): number | undefined;
  prices: Readonly<Record<string, Price>>;
  random: () => number;
}

function blendedPrice(d: Deployment, prices: Readonly<Record<string, Price>>): number {
  const p = d.price ?? findPrice(d.model, prices);
  return p ? p.input + p.output : Number.POSITIVE_INFINITY;
}

/** Orders capable deployments by the route's strategy; the order is also the fallback order. */
export function orderDeployments(
  route: Route,
  candidates: readonly Deployment[],
  inputs: OrderingInputs,
): Deployment[] {
  const list = [...candidates];
  switch (route.strategy) {
    case 'priority':
      return list;
    case 'cost':
      return list.sort((a, b) => blendedPrice(a, inputs.prices) - blendedPrice(b, inputs.prices));
    case 'latency':
      return list.sort((a, b) => (inputs.latencyMs(a.id) ?? -1) - (inputs.latencyMs(b.id) ?? -1));
    case 'weighted': {
      // Weighted sampling without replacement: the first pick follows the weights, the rest are fallbacks.
      const out: Deployment[] = [];
      while (list.length > 0) {
        const total = list.reduce((s, d) => s + d.weight, 0);
        let r = inputs.random() * total;
        let index = 0;
        for (; index < list.length - 1; index++) {
          r -= list[index]!.weight;
          if (r < 0) break;
        }
        out.push(...list.splice(index, 1));
      }
      return out;
    }
  }
}

/** Exponentially weighted moving average of latencies, per deployment. */
export class LatencyTracker {
  private readonly values = new Map<string, number>();
  constructor(private readonly alpha = 0.2) {}

  record(deploymentId: string, ms: number): void {
    const prev = this.values.get(deploymentId);
    this.values.set(deploymentId, prev === undefined ? ms : prev + this.alpha * (ms - prev));
  }

  get(deploymentId: string): number | undefined {
    return this.values.get(deploymentId);
  }
}

import { type Config, configSchema } from '@flowloom/config';
import { AppError } from '@flowloom/errors';
import type { ChatRequest } from '@flowloom/providers';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PRICES } from './prices.js';
import {
  type Deployment,
  filterCapable,
  LatencyTracker,
  type OrderingInputs,
  orderDeployments,
  type Route,
  requiredCapabilities,
  resolveRoute,
} from './routing.js';

const LOCAL_MODELS = ['flowloom-local', 'flowloom-local-embedding'];

function config(input: Record<string, unknown>): Config {
  return configSchema.parse(input);
}

const base = config({
  providers: {
    openai: { kind: 'openai', models: ['gpt-*', 'o3*'] },
    azure: { kind: 'azure', baseUrl: 'https://example.openai.azure.com', models: ['gpt-4o'] },
    ollama: { kind: 'openai-compatible', baseUrl: 'http://127.0.0.1:11434/v1', models: ['llama3.1:*'] },
    anthropic: { kind: 'anthropic' },
  },
  models: {
    smart: {
      strategy: 'priority',
      deployments: [
        { provider: 'openai', model: 'gpt-4o', region: 'us', weight: 2 },
        { provider: 'anthropic', model: 'claude-sonnet-4', price: { input: 3, output: 15 } },
      ],
    },
    cheap: { strategy: 'cost', deployments: [{ provider: 'openai', model: 'gpt-4o-mini' }] },
  },
});

/** A small seeded generator (mulberry32), so the distribution tests are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function deployment(id: string, extra: Partial<Deployment> = {}): Deployment {
  const [provider = id, model = id] = id.split('/');
  return { id, provider, model, weight: 1, ...extra };
}

function route(strategy: Route['strategy'], deployments: Deployment[]): Route {
  return { alias: 'm', strategy, deployments };
}

const inputs = (extra: Partial<OrderingInputs> = {}): OrderingInputs => ({
  latencyMs: () => undefined,
  prices: DEFAULT_PRICES,
  random: Math.random,
  ...extra,
});

function chat(extra: Partial<ChatRequest> = {}): ChatRequest {
  return {
    model: 'm',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
    stream: false,
    ...extra,
  };
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

describe('resolving a model name', () => {
  it('when the name is a configured alias, then its deployments come back in order with stable ids', () => {
    const r = resolveRoute('smart', base, LOCAL_MODELS);
    expect(r.alias).toBe('smart');
    expect(r.strategy).toBe('priority');
    expect(r.deployments).toEqual([
      { id: 'openai/gpt-4o@us', provider: 'openai', model: 'gpt-4o', region: 'us', weight: 2 },
      {
        id: 'anthropic/claude-sonnet-4',
        provider: 'anthropic',
        model: 'claude-sonnet-4',
        weight: 1,
        price: { input: 3, output: 15 },
      },
    ]);
  });

  it('when the alias names a strategy, then the route carries it', () => {
    expect(resolveRoute('cheap', base, LOCAL_MODELS).strategy).toBe('cost');
  });

  it('when the name is provider/model of a configured provider, then that one deployment is used', () => {
    const r = resolveRoute('anthropic/claude-haiku-4-5', base, LOCAL_MODELS);
    expect(r.deployments).toEqual([
      { id: 'anthropic/claude-haiku-4-5', provider: 'anthropic', model: 'claude-haiku-4-5', weight: 1 },
    ]);
    expect(r.alias).toBe('anthropic/claude-haiku-4-5');
  });

  it('when the provider/model model itself contains a slash, then only the first slash splits', () => {
    const r = resolveRoute('ollama/library/llama3:8b', base, LOCAL_MODELS);
    expect(r.deployments[0]).toMatchObject({ provider: 'ollama', model: 'library/llama3:8b' });
  });

  it('when the name is local/<model>, then the built-in local provider serves it', () => {
    const r = resolveRoute('local/flowloom-local', base, LOCAL_MODELS);
    expect(r.deployments).toEqual([
      { id: 'local/flowloom-local', provider: 'local', model: 'flowloom-local', weight: 1 },
    ]);
  });

  it('when a provider model pattern with * matches, then that provider serves the name directly', () => {
    expect(resolveRoute('gpt-4.1-mini', base, LOCAL_MODELS).deployments.map((d) => d.id)).toEqual([
      'openai/gpt-4.1-mini',
    ]);
    expect(resolveRoute('o3-mini', base, LOCAL_MODELS).deployments.map((d) => d.id)).toEqual([
      'openai/o3-mini',
    ]);
    expect(resolveRoute('llama3.1:8b', base, LOCAL_MODELS).deployments.map((d) => d.id)).toEqual([
      'ollama/llama3.1:8b',
    ]);
  });

  it('when several providers match, then each becomes a deployment in configuration order', () => {
    expect(resolveRoute('gpt-4o', base, LOCAL_MODELS).deployments.map((d) => d.id)).toEqual([
      'openai/gpt-4o',
      'azure/gpt-4o',
    ]);
  });

  it('when a pattern contains regex characters, then they match only literally', () => {
    // '.' in 'llama3.1:*' is a dot, not "any character".
    expect(() => resolveRoute('llama3x1:8b', base, LOCAL_MODELS)).toThrow(AppError);
    // '*' must cover the whole name, not a substring.
    expect(() => resolveRoute('my-gpt-4o', base, LOCAL_MODELS)).toThrow(AppError);
  });

  it('when a pattern has * in the middle, then it matches anything there', () => {
    const c = config({
      providers: { vllm: { kind: 'openai-compatible', baseUrl: 'http://h/v1', models: ['qwen-*-instruct'] } },
    });
    expect(resolveRoute('qwen-2.5-72b-instruct', c, []).deployments[0]?.id).toBe(
      'vllm/qwen-2.5-72b-instruct',
    );
    expect(() => resolveRoute('qwen-2.5-72b-base', c, [])).toThrow(AppError);
  });

  it('when the name is a built-in local model, then the local provider serves it', () => {
    expect(resolveRoute('flowloom-local', base, LOCAL_MODELS).deployments.map((d) => d.id)).toEqual([
      'local/flowloom-local',
    ]);
    expect(resolveRoute('flowloom-local-embedding', config({}), LOCAL_MODELS).deployments[0]?.provider).toBe(
      'local',
    );
  });

  it('when an alias and a provider pattern both match, then the alias wins', () => {
    const c = config({
      providers: { openai: { kind: 'openai', models: ['gpt-*'] } },
      models: { 'gpt-4o': { deployments: [{ provider: 'local', model: 'flowloom-local' }] } },
    });
    expect(resolveRoute('gpt-4o', c, LOCAL_MODELS).deployments.map((d) => d.id)).toEqual([
      'local/flowloom-local',
    ]);
  });

  it('when nothing knows the name, then it is a model_not_found error naming the model', () => {
    const error = catchError(() => resolveRoute('no-such-model', base, LOCAL_MODELS));
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('model_not_found');
    expect((error as AppError).param).toBe('model');
    expect((error as AppError).message).toContain("'no-such-model'");
  });

  it('when the prefix before / is not a configured provider, then it is model_not_found', () => {
    const error = catchError(() => resolveRoute('mistral/mistral-large', base, LOCAL_MODELS));
    expect((error as AppError).code).toBe('model_not_found');
  });

  it('when the name is empty-prefixed like "/gpt-4o", then it is not treated as provider/model', () => {
    const error = catchError(() => resolveRoute('/gpt-4o', base, LOCAL_MODELS));
    expect((error as AppError).code).toBe('model_not_found');
  });

  it('when the name is a built-in object property, then it is model_not_found (not a prototype lookup)', () => {
    for (const model of ['constructor', 'toString', '__proto__', 'hasOwnProperty/x', 'toString/gpt-4o']) {
      const error = catchError(() => resolveRoute(model, base, LOCAL_MODELS));
      expect(error, model).toBeInstanceOf(AppError);
      expect((error as AppError).code, model).toBe('model_not_found');
    }
  });
});

describe('required capabilities and the capability filter', () => {
  it('when a request uses tools, images, JSON mode and streaming, then each is needed', () => {
    expect(requiredCapabilities(chat())).toEqual([]);
    expect(
      requiredCapabilities(
        chat({
          stream: true,
          tools: [{ name: 't', parameters: { type: 'object' } }],
          responseFormat: { type: 'json_object' },
          messages: [{ role: 'user', content: [{ type: 'image', url: 'https://x/y.png' }] }],
        }),
      ),
    ).toEqual(['tools', 'vision', 'json', 'streaming']);
  });

  it('when the response format is plain text or the tool list is empty, then nothing extra is needed', () => {
    expect(requiredCapabilities(chat({ responseFormat: { type: 'text' }, tools: [] }))).toEqual([]);
  });

  it('when deployments declare capabilities, then only those listing every need remain; undeclared count as capable', () => {
    const r = route('priority', [
      deployment('a/text', { capabilities: ['streaming'] }),
      deployment('b/tools', { capabilities: ['tools', 'streaming'] }),
      deployment('c/any'),
    ]);
    expect(filterCapable(r, ['tools'], 10).map((d) => d.id)).toEqual(['b/tools', 'c/any']);
    expect(filterCapable(r, ['tools', 'vision'], 10).map((d) => d.id)).toEqual(['c/any']);
    expect(filterCapable(r, [], 10).map((d) => d.id)).toEqual(['a/text', 'b/tools', 'c/any']);
  });

  it('when the prompt is larger than a context window, then that deployment is left out', () => {
    const r = route('priority', [
      deployment('a/small', { contextWindow: 1_000 }),
      deployment('b/large', { contextWindow: 100_000 }),
    ]);
    expect(filterCapable(r, [], 1_000).map((d) => d.id)).toEqual(['a/small', 'b/large']);
    expect(filterCapable(r, [], 1_001).map((d) => d.id)).toEqual(['b/large']);
  });

  it('when no deployment is capable, then it is an invalid_request naming the needs', () => {
    const r = route('priority', [deployment('a/small', { contextWindow: 10, capabilities: ['streaming'] })]);
    const error = catchError(() => filterCapable(r, ['vision'], 5));
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('invalid_request');
    expect((error as AppError).message).toContain('vision');
    expect((catchError(() => filterCapable(r, [], 11)) as AppError).code).toBe('invalid_request');
  });
});

describe('ordering deployments', () => {
  const a = deployment('p/a');
  const b = deployment('p/b');
  const c = deployment('p/c');

  it('when the strategy is priority, then the configured order is kept', () => {
    expect(orderDeployments(route('priority', [c, a, b]), [c, a, b], inputs()).map((d) => d.id)).toEqual([
      'p/c',
      'p/a',
      'p/b',
    ]);
  });

  it('when the strategy is cost, then the cheapest comes first and an unpriced one last', () => {
    const mini = deployment('openai/gpt-4o-mini');
    const big = deployment('openai/gpt-4o-2024-08-06');
    const own = deployment('x/custom', { price: { input: 0.01, output: 0.01 } });
    const unknown = deployment('x/mystery');
    const ordered = orderDeployments(
      route('cost', [unknown, big, mini, own]),
      [unknown, big, mini, own],
      inputs(),
    );
    expect(ordered.map((d) => d.id)).toEqual([
      'x/custom',
      'openai/gpt-4o-mini',
      'openai/gpt-4o-2024-08-06',
      'x/mystery',
    ]);
  });

  it("when a deployment has its own price, then it overrides the table's", () => {
    const expensiveMini = deployment('openai/gpt-4o-mini', { price: { input: 100, output: 100 } });
    const big = deployment('openai/gpt-4o');
    expect(
      orderDeployments(route('cost', [expensiveMini, big]), [expensiveMini, big], inputs()).map((d) => d.id),
    ).toEqual(['openai/gpt-4o', 'openai/gpt-4o-mini']);
  });

  it('when the strategy is latency, then unmeasured deployments come first, then the fastest', () => {
    const latency: Record<string, number> = { 'p/a': 50, 'p/c': 10 };
    const ordered = orderDeployments(
      route('latency', [a, b, c]),
      [a, b, c],
      inputs({ latencyMs: (id) => latency[id] }),
    );
    expect(ordered.map((d) => d.id)).toEqual(['p/b', 'p/c', 'p/a']);
  });

  it('when the strategy is latency and all are measured, then they are sorted ascending', () => {
    const latency: Record<string, number> = { 'p/a': 30, 'p/b': 20, 'p/c': 10 };
    const ordered = orderDeployments(
      route('latency', [a, b, c]),
      [a, b, c],
      inputs({ latencyMs: (id) => latency[id] }),
    );
    expect(ordered.map((d) => d.id)).toEqual(['p/c', 'p/b', 'p/a']);
  });

  it('when the strategy is weighted, then the first pick over many draws follows the weights', () => {
    const heavy = deployment('p/heavy', { weight: 7 });
    const mid = deployment('p/mid', { weight: 2 });
    const light = deployment('p/light', { weight: 1 });
    const r = route('weighted', [heavy, mid, light]);
    const random = seeded(1234);
    const firsts: Record<string, number> = { 'p/heavy': 0, 'p/mid': 0, 'p/light': 0 };
    const draws = 20_000;
    for (let i = 0; i < draws; i++) {
      const first = orderDeployments(r, r.deployments, inputs({ random }))[0]!;
      firsts[first.id] = (firsts[first.id] ?? 0) + 1;
    }
    expect(firsts['p/heavy']! / draws).toBeCloseTo(0.7, 1);
    expect(firsts['p/mid']! / draws).toBeCloseTo(0.2, 1);
    expect(firsts['p/light']! / draws).toBeCloseTo(0.1, 1);
    expect(Math.abs(firsts['p/heavy']! / draws - 0.7)).toBeLessThan(0.02);
    expect(Math.abs(firsts['p/light']! / draws - 0.1)).toBeLessThan(0.02);
  });

  it('when the strategy is weighted, then every deployment appears exactly once (the rest are fallbacks)', () => {
    const r = route('weighted', [
      deployment('p/a', { weight: 5 }),
      deployment('p/b', { weight: 1 }),
      deployment('p/c', { weight: 0.001 }),
    ]);
    const random = seeded(99);
    for (let i = 0; i < 500; i++) {
      const ids = orderDeployments(r, r.deployments, inputs({ random })).map((d) => d.id);
      expect(ids).toHaveLength(3);
      expect([...ids].sort()).toEqual(['p/a', 'p/b', 'p/c']);
    }
  });

  it('when random returns its extremes, then weighted ordering still picks a valid deployment', () => {
    const r = route('weighted', [deployment('p/a', { weight: 1 }), deployment('p/b', { weight: 1 })]);
    expect(orderDeployments(r, r.deployments, inputs({ random: () => 0 })).map((d) => d.id)).toEqual([
      'p/a',
      'p/b',
    ]);
    expect(orderDeployments(r, r.deployments, inputs({ random: () => 0.999_999 })).map((d) => d.id)).toEqual([
      'p/b',
      'p/a',
    ]);
  });

  it('when ordering, then the candidate list passed in is not mutated', () => {
    const list = [a, b, c];
    orderDeployments(route('weighted', list), list, inputs({ random: seeded(5) }));
    orderDeployments(route('latency', list), list, inputs({ latencyMs: (id) => (id === 'p/c' ? 1 : 100) }));
    expect(list.map((d) => d.id)).toEqual(['p/a', 'p/b', 'p/c']);
  });
});

describe('latency tracker', () => {
  it('when latencies are recorded, then the first sets the average and later ones move it by alpha', () => {
    const tracker = new LatencyTracker(0.5);
    expect(tracker.get('d')).toBeUndefined();
    tracker.record('d', 100);
    expect(tracker.get('d')).toBe(100);
    tracker.record('d', 200);
    expect(tracker.get('d')).toBe(150);
    tracker.record('other', 10);
    expect(tracker.get('d')).toBe(150);
  });
});

import { Counter, Histogram, type Registry } from '@flowloom/telemetry';
import type { GatewayMetrics } from '../ports/metrics.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Prometheus series for the gateway. Model labels only ever carry routed names, never raw input. */
export function createPrometheusMetrics(registry: Registry): GatewayMetrics {
  const requests = new Counter({
    name: 'flowloom_requests_total',
    help: 'Requests answered by the gateway, by API and HTTP status',
    labelNames: ['api', 'status', 'stream'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'flowloom_request_duration_seconds',
    help: 'Time from request to the end of the response',
    labelNames: ['api', 'stream'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const upstream = new Histogram({
    name: 'flowloom_upstream_duration_seconds',
    help: 'Duration of each attempt at a deployment',
    labelNames: ['deployment', 'outcome'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const upstreamErrors = new Counter({
    name: 'flowloom_upstream_errors_total',
    help: 'Failed attempts at a deployment, by kind (http, timeout, connection, bad_response)',
    labelNames: ['deployment', 'kind'],
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'flowloom_tokens_total',
    help: 'Tokens metered, by model, deployment and kind: input and output, and the parts of them that were cached_input (cache reads), cache_write (cache writes, of which cache_write_1h for an hour) and reasoning',
    labelNames: ['model', 'deployment', 'kind'],
    registers: [registry],
  });
  const cost = new Counter({
    name: 'flowloom_cost_usd_total',
    help: 'Cost of answered requests in US dollars',
    labelNames: ['model', 'deployment'],
    registers: [registry],
  });
  const ttft = new Histogram({
    name: 'flowloom_time_to_first_token_seconds',
    help: 'Time from request to the first streamed token',
    labelNames: ['deployment'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  return {
    request(l, seconds) {
      requests.inc({ api: l.api, status: String(l.status), stream: String(l.stream) });
      latency.observe({ api: l.api, stream: String(l.stream) }, seconds);
    },
    upstream(l, seconds) {
      upstream.observe({ deployment: l.deployment, outcome: l.outcome }, seconds);
      if (l.outcome === 'error')
        upstreamErrors.inc({ deployment: l.deployment, kind: l.errorKind ?? 'unknown' });
    },
    tokens(l, usage) {
      // Label objects written out rather than `{ ...l, kind }`: on Node 20 a property added after a
      // spread takes V8's slow path, and this runs for every answered request.
      const { model, deployment } = l;
      tokens.inc({ model, deployment, kind: 'input' }, usage.inputTokens);
      tokens.inc({ model, deployment, kind: 'output' }, usage.outputTokens);
      tokens.inc({ model, deployment, kind: 'cached_input' }, usage.cachedInputTokens);
      if (usage.cacheWriteTokens !== undefined)
        tokens.inc({ model, deployment, kind: 'cache_write' }, usage.cacheWriteTokens);
      if (usage.cacheWrite1hTokens !== undefined)
        tokens.inc({ model, deployment, kind: 'cache_write_1h' }, usage.cacheWrite1hTokens);
      if (usage.reasoningTokens !== undefined)
        tokens.inc({ model, deployment, kind: 'reasoning' }, usage.reasoningTokens);
    },
    cost(l, usd) {
      cost.inc(l, usd);
    },
    timeToFirstToken(l, seconds) {
      ttft.observe(l, seconds);
    },
  };
}

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** A Prometheus registry per process component; `/metrics` renders it. */
export function createRegistry(prefix = 'flowloom_'): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}

export { Counter, Gauge, Histogram, Registry };

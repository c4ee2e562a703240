import type { BusHealth } from './bus.js';

/**
 * The bus line of a service's /readyz: `ok` while events flow (and every consumer group of the
 * process consumes), else `degraded: ...` saying since when, why, what the service does meanwhile
 * (`meanwhile`) and what to fix. Each service decides whether that makes it not ready.
 */
export function busCheck(health: BusHealth, meanwhile: string): string {
  const waiting = Object.entries(health.consumers).filter(([, status]) => status !== 'consuming');
  if (health.state === 'connected' && waiting.length === 0) return 'ok';
  const problems: string[] = [];
  if (health.state !== 'connected')
    problems.push(
      `Kafka at ${health.target} ${health.state === 'connecting' ? 'not reached yet' : 'unreachable'} since ${new Date(health.since).toISOString()}${health.reason ? ` (${health.reason})` : ''}`,
    );
  for (const [group, status] of waiting) problems.push(`consumer group ${group} ${status}`);
  return `degraded: ${problems.join('; ')}; ${meanwhile}. Fix: start Kafka, or correct FLOWLOOM_KAFKA_BROKERS; the service reconnects by itself`;
}

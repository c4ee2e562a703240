import type { Usage } from '@flowloom/providers';

/** What the gateway reports about its traffic; the Prometheus adapter implements it. */
export interface GatewayMetrics {
  request(labels: { api: string; status: number; stream: boolean }, seconds: number): void;
  upstream(
    labels: { deployment: string; outcome: 'ok' | 'error'; errorKind?: string },
    seconds: number,
  ): void;
  /** Every kind of token the usage reports; kinds it leaves out (unknown) are not counted. */
  tokens(labels: { model: string; deployment: string }, usage: Usage): void;
  cost(labels: { model: string; deployment: string }, usd: number): void;
  timeToFirstToken(labels: { deployment: string }, seconds: number): void;
}

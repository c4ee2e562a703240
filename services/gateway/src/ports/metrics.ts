/** What the gateway reports about its traffic; the Prometheus adapter implements it. */
export interface GatewayMetrics {
  request(labels: { api: string; status: number; stream: boolean }, seconds: number): void;
  upstream(
    labels: { deployment: string; outcome: 'ok' | 'error'; errorKind?: string },
    seconds: number,
  ): void;
  tokens(labels: { model: string; deployment: string }, input: number, output: number, cached: number): void;
  cost(labels: { model: string; deployment: string }, usd: number): void;
  timeToFirstToken(labels: { deployment: string }, seconds: number): void;
}

import type { Figure } from './load.js';

/** The event-loop monitor's timer period (prom-client's default precision): each sample is this plus the delay. */
const LOOP_RESOLUTION_MS = 10;

/** Sample values of a Prometheus text exposition, by the full series name (labels included). */
function samples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

/**
 * What the gateway's main thread went through during a load window, from its own /metrics: the
 * event-loop delay (prom-client's monitor, reset at each scrape, so the first scrape starts the
 * window) and the garbage collector's pauses. They explain a latency percentile: a request that
 * arrives during a 10 ms stall waits 10 ms whatever the request path costs.
 */
export function mainThreadWindow(metricsUrl: string, prefix = 'flowloom_') {
  const scrape = async () => samples(await fetch(metricsUrl).then((r) => r.text()));
  let before = new Map<string, number>();
  return {
    async start(): Promise<void> {
      before = await scrape();
    },
    async figures(label: string): Promise<Figure[]> {
      const after = await scrape();
      const loop = (name: string) =>
        Math.max(
          0,
          (after.get(`${prefix}nodejs_eventloop_lag_${name}_seconds`) ?? 0) * 1000 - LOOP_RESOLUTION_MS,
        );
      let pauses = 0;
      let pauseSeconds = 0;
      let over10ms = 0;
      for (const [series, value] of after) {
        const delta = value - (before.get(series) ?? 0);
        if (!series.startsWith(`${prefix}nodejs_gc_duration_seconds`)) continue;
        if (series.startsWith(`${prefix}nodejs_gc_duration_seconds_count`)) pauses += delta;
        else if (series.startsWith(`${prefix}nodejs_gc_duration_seconds_sum`)) pauseSeconds += delta;
        else if (series.includes('le="0.01"')) over10ms -= delta;
        else if (series.includes('le="+Inf"')) over10ms += delta;
      }
      return [
        {
          name: `${label}: main-thread event-loop delay p99`,
          value: Number(loop('p99').toFixed(1)),
          unit: 'ms',
          note: `p50 ${loop('p50').toFixed(1)} ms, max ${loop('max').toFixed(1)} ms (stalls every request waits out)`,
        },
        {
          name: `${label}: garbage collection`,
          value: Number((pauseSeconds * 1000).toFixed(1)),
          unit: 'ms',
          note: `${pauses} pauses, ${over10ms} of them over 10 ms`,
        },
      ];
    },
  };
}

/** One series' value from a /metrics page (0 when absent). */
export async function scrapeValue(metricsUrl: string, series: string): Promise<number> {
  return samples(await fetch(metricsUrl).then((r) => r.text())).get(series) ?? 0;
}

export interface AuditTrailCatchUp {
  /** Answered requests' events not yet in the ledger when the load stopped. */
  behindAtEnd: number;
  /** Seconds from the end of the load until none was left (or until `maxMs`). */
  seconds: number;
  /** What was still behind when it gave up; 0 when it caught up. */
  stillBehind: number;
}

/**
 * How far the audit trail was behind the answers when a load stopped, and how long the embedded
 * platform took to write the rest: the outbox's backlog is what the ledger does not have yet. A
 * throughput the ledger cannot follow is only good for bursts.
 */
export async function auditTrailCatchUp(
  metricsUrl: string,
  log: (line: string) => void,
  maxMs = 600_000,
): Promise<AuditTrailCatchUp> {
  const backlog = () => scrapeValue(metricsUrl, 'flowloom_outbox_backlog_events');
  const started = Date.now();
  const behindAtEnd = await backlog();
  let left = behindAtEnd;
  let lastLog = started;
  while (left > 0 && Date.now() - started < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    left = await backlog();
    if (Date.now() - lastLog > 10_000) {
      log(`audit trail: ${left} events still to write…`);
      lastLog = Date.now();
    }
  }
  return { behindAtEnd, seconds: (Date.now() - started) / 1000, stillBehind: left };
}

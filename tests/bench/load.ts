import autocannon from 'autocannon';
import { Pool } from 'undici';

export interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface Throughput {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

/** Closed-loop throughput with autocannon: `connections` clients sending back to back. */
export async function throughput(target: Target, connections: number, seconds: number): Promise<Throughput> {
  const result = await autocannon({
    url: target.url,
    method: 'POST',
    headers: target.headers,
    body: target.body,
    connections,
    duration: seconds,
  });
  return {
    rps: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface LatencyProfile {
  sent: number;
  failed: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
}

/**
 * Open-loop load at a fixed rate with microsecond timing (autocannon rounds to milliseconds, too
 * coarse for sub-millisecond overhead). Requests go out on schedule whether or not earlier ones returned.
 */
export async function fixedRate(
  target: Target,
  ratePerSecond: number,
  seconds: number,
): Promise<LatencyProfile> {
  const url = new URL(target.url);
  const pool = new Pool(url.origin, { connections: 64, pipelining: 1 });
  const latencies: number[] = [];
  let failed = 0;
  const total = Math.round(ratePerSecond * seconds);
  const interval = 1000 / ratePerSecond;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sent = performance.now();
    inflight.push(
      pool
        .request({ path: url.pathname, method: 'POST', headers: target.headers, body: target.body })
        .then(async (res) => {
          await res.body.dump();
          if (res.statusCode !== 200) failed++;
          else latencies.push((performance.now() - sent) * 1000);
        })
        .catch(() => {
          failed++;
        }),
    );
  }
  await Promise.all(inflight);
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    sent: total,
    failed,
    p50Us: percentile(latencies, 50),
    p90Us: percentile(latencies, 90),
    p99Us: percentile(latencies, 99),
  };
}

/** Time to the first byte of a streamed answer, for sequential requests. */
export async function timeToFirstByte(
  target: Target,
  count: number,
): Promise<{ p50Us: number; p99Us: number }> {
  const url = new URL(target.url);
  const pool = new Pool(url.origin, { connections: 1 });
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const sent = performance.now();
    const res = await pool.request({
      path: url.pathname,
      method: 'POST',
      headers: target.headers,
      body: target.body,
    });
    let first = true;
    for await (const _chunk of res.body) {
      if (first) {
        samples.push((performance.now() - sent) * 1000);
        first = false;
      }
    }
  }
  await pool.close();
  samples.sort((a, b) => a - b);
  return { p50Us: percentile(samples, 50), p99Us: percentile(samples, 99) };
}

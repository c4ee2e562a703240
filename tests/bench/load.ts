import autocannon from 'autocannon';
import { Pool } from 'undici';

/** One printed line of `npm run bench`. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

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

/** Closed-loop load with autocannon: `connections` clients sending `target`'s request back to back. */
function load(target: Target, connections: number, until: { duration: number } | { amount: number }) {
  return autocannon({
    url: target.url,
    method: 'POST',
    headers: target.headers,
    body: target.body,
    connections,
    ...until,
  });
}

/** Closed-loop throughput over `seconds`. */
export async function throughput(target: Target, connections: number, seconds: number): Promise<Throughput> {
  const result = await load(target, connections, { duration: seconds });
  return {
    rps: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** Sends exactly `amount` requests over `connections` connections; returns how many got a 2xx. */
export async function sendMany(target: Target, connections: number, amount: number): Promise<number> {
  return (await load(target, connections, { amount }))['2xx'];
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
  /** Sees each successful answer's headers and the wall-clock time (ms) its body had arrived. */
  onAnswer?: (headers: Record<string, string | string[] | undefined>, answeredAtMs: number) => void,
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
          else {
            const now = performance.now();
            latencies.push((now - sent) * 1000);
            onAnswer?.(res.headers, performance.timeOrigin + now);
          }
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

/**
 * Each target's closed-loop throughput at 32 connections (after a 2 s warm-up), one after the other
 * so that they never compete for the machine.
 */
export async function throughputFigures(
  targets: readonly Target[],
  seconds: number,
  log: (line: string) => void,
): Promise<{ figures: Figure[]; results: Record<string, Throughput> }> {
  const figures: Figure[] = [];
  const results: Record<string, Throughput> = {};
  for (const target of targets) {
    log(`throughput, 32 connections, ${seconds} s: ${target.name}…`);
    await throughput(target, 32, 2);
    const r = await throughput(target, 32, seconds);
    results[target.name] = r;
    figures.push({
      name: `${target.name}: throughput (32 connections)`,
      value: Math.round(r.rps),
      unit: 'req/s',
      note: `p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, errors ${r.errors}, non-2xx ${r.non2xx}`,
    });
  }
  return { figures, results };
}

/** Latency at 500 req/s of the upstream alone, then through `via`, and the difference (the overhead). */
export async function overheadFigures(
  upstream: Target,
  via: Target,
  seconds: number,
  log: (line: string) => void,
  label = via.name,
  /** Watches `via` during its measured run and adds what it saw (see runtime-metrics.ts). */
  observe?: { start(): Promise<void>; figures(label: string): Promise<Figure[]> },
): Promise<Figure[]> {
  log(`fixed rate 500 req/s for ${seconds} s: upstream alone, then through ${label}…`);
  await fixedRate(upstream, 500, 2);
  const direct = await fixedRate(upstream, 500, seconds);
  await fixedRate(via, 500, 2);
  await observe?.start();
  const through = await fixedRate(via, 500, seconds);
  const observed = (await observe?.figures(`${label} at 500 req/s`)) ?? [];
  return [
    {
      name: 'upstream alone at 500 req/s: p50 / p99',
      value: Math.round(direct.p50Us),
      unit: 'µs',
      note: `p99 ${Math.round(direct.p99Us)} µs, failed ${direct.failed}/${direct.sent}`,
    },
    {
      name: `through ${label} at 500 req/s: p50 / p99`,
      value: Math.round(through.p50Us),
      unit: 'µs',
      note: `p99 ${Math.round(through.p99Us)} µs, failed ${through.failed}/${through.sent}`,
    },
    {
      name: `${label} overhead at 500 req/s, p50`,
      value: Math.round(through.p50Us - direct.p50Us),
      unit: 'µs',
      note: 'target ≤ 1000 µs',
    },
    {
      name: `${label} overhead at 500 req/s, p99`,
      value: Math.round(through.p99Us - direct.p99Us),
      unit: 'µs',
      note: 'target ≤ 5000 µs',
    },
    ...observed,
  ];
}

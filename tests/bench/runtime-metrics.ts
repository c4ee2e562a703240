import { readFileSync } from 'node:fs';
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

export interface BacklogCatchUp {
  /** What was behind when the load stopped. */
  behindAtEnd: number;
  /** Seconds from the end of the load until none was left (or until `maxMs`). */
  seconds: number;
  /** What was still behind when it gave up; 0 when it caught up. */
  stillBehind: number;
}

/**
 * How far a background backlog (a gauge of `metricsUrl`) was behind when a load stopped, and how
 * long the platform took to work it off. A throughput the background work cannot follow is only
 * good for bursts; and what a measurement after the load sees includes that work until it is done.
 */
export async function backlogCatchUp(
  metricsUrl: string,
  series: string,
  what: string,
  log: (line: string) => void,
  maxMs = 600_000,
): Promise<BacklogCatchUp> {
  const backlog = () => scrapeValue(metricsUrl, series);
  const started = Date.now();
  const behindAtEnd = await backlog();
  let left = behindAtEnd;
  let lastLog = started;
  while (left > 0 && Date.now() - started < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    left = await backlog();
    if (Date.now() - lastLog > 10_000) {
      log(`${what}: ${left} still behind…`);
      lastLog = Date.now();
    }
  }
  return { behindAtEnd, seconds: (Date.now() - started) / 1000, stillBehind: left };
}

/**
 * The audit trail behind the answers: the outbox's backlog is what the ledger does not have yet.
 * Then its search words (indexed after the entries, when the database has time): until they are
 * done, text search waits for them and the platform is still busy.
 */
export const auditTrailCatchUp = (metricsUrl: string, log: (line: string) => void, maxMs?: number) =>
  backlogCatchUp(metricsUrl, 'flowloom_outbox_backlog_events', 'audit trail, events to write', log, maxMs);
export const auditWordsCatchUp = (metricsUrl: string, log: (line: string) => void, maxMs?: number) =>
  backlogCatchUp(
    metricsUrl,
    'flowloom_audit_index_behind_entries{part="words"}',
    'audit search words, entries to index',
    log,
    maxMs,
  );

/** Where a process's resident memory is, in MB (see `memoryParts`). */
export interface MemoryParts {
  rss: number;
  /** The main thread's V8 heap (committed), from /metrics. */
  mainHeap: number;
  /**
   * The part of it in use (live objects and garbage not yet collected): a leak grows this, where
   * committed memory the collector has yet to give back grows only `mainHeap`.
   */
  mainHeapUsed: number;
  /** The embedded database thread's own V8 heap (committed). */
  dbHeap: number;
  /** PostgreSQL's WASM memory: its size, and the part of it that is resident. */
  wasmSize: number;
  wasmResident: number;
  /** glibc's malloc arenas: the main one (brk) and the threads' 64 MB heaps, resident. */
  mallocArenas: number;
  /** Mapped files (the node binary, libraries): the same from start to end. */
  files: number;
  /** The rest: V8's code and large objects outside its paged spaces, stacks, mmap'ed malloc chunks. */
  other: number;
}

const MB = 1024 * 1024;
/** glibc reserves each thread arena as one 64 MB-aligned region of this size (HEAP_MAX_SIZE on 64-bit). */
const ARENA_BYTES = 64 * MB;

interface Mapping {
  start: number;
  end: number;
  perms: string;
  name: string;
  rssKb: number;
}

function mappings(pid: number): Mapping[] {
  const maps: Mapping[] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      // Addresses stay below 2^53 on x86-64 and arm64 (47-48 bit user space): exact as numbers.
      maps.push({
        start: Number.parseInt(head[1]!, 16),
        end: Number.parseInt(head[2]!, 16),
        perms: head[3]!,
        name: head[4] ?? '',
        rssKb: 0,
      });
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    const last = maps[maps.length - 1];
    if (rss && last) last.rssKb = Number(rss[1]);
  }
  return maps;
}

/**
 * A breakdown of a FlowLoom process's resident memory (Linux: /proc/PID/smaps, and the process's
 * /metrics for the V8 heaps and the embedded database's WASM memory). It tells growth in the
 * process's memory apart: the heaps the collector sizes, PostgreSQL's WASM memory, and freed memory
 * glibc keeps in its arenas. Undefined where /proc is missing.
 */
export async function memoryParts(pid: number, metricsUrl: string): Promise<MemoryParts | undefined> {
  let maps: Mapping[];
  try {
    maps = mappings(pid);
  } catch {
    return undefined;
  }
  const metrics = samples(await fetch(metricsUrl).then((r) => r.text()));
  const metric = (series: string) => metrics.get(series) ?? 0;
  const wasmBytes = metric('flowloom_embedded_db_memory_bytes{part="wasm"}');
  let rssKb = 0;
  let filesKb = 0;
  let wasmKb = 0;
  let arenasKb = 0;
  maps.forEach((map, i) => {
    rssKb += map.rssKb;
    const size = map.end - map.start;
    const next = maps[i + 1];
    if (map.name === '[heap]') arenasKb += map.rssKb;
    else if (map.name.startsWith('/')) filesKb += map.rssKb;
    // V8 commits the WASM memory's pages at the start of a much larger reservation.
    else if (wasmBytes > 0 && size === wasmBytes && map.perms === 'rw-p') wasmKb += map.rssKb;
    else if (
      map.perms === 'rw-p' &&
      map.start % ARENA_BYTES === 0 &&
      (size === ARENA_BYTES ||
        (next?.start === map.end && next.perms === '---p' && next.end - map.start === ARENA_BYTES))
    )
      arenasKb += map.rssKb;
  });
  const mainHeap = metric('flowloom_nodejs_heap_size_total_bytes') / MB;
  const mainHeapUsed = metric('flowloom_nodejs_heap_size_used_bytes') / MB;
  const dbHeap = metric('flowloom_embedded_db_memory_bytes{part="heap_total"}') / MB;
  const rss = rssKb / 1024;
  const known = mainHeap + dbHeap + (wasmKb + arenasKb + filesKb) / 1024;
  return {
    rss,
    mainHeap,
    mainHeapUsed,
    dbHeap,
    wasmSize: wasmBytes / MB,
    wasmResident: wasmKb / 1024,
    mallocArenas: arenasKb / 1024,
    files: filesKb / 1024,
    other: rss - known,
  };
}

/** One line of a breakdown, and of the difference between two (`since`). */
export function describeMemory(parts: MemoryParts, since?: MemoryParts): string {
  const fields: [string, keyof MemoryParts][] = [
    ['main V8 heap', 'mainHeap'],
    ['database thread V8 heap', 'dbHeap'],
    ['PostgreSQL WASM resident', 'wasmResident'],
    ['malloc arenas', 'mallocArenas'],
    ['files', 'files'],
    ['other', 'other'],
  ];
  const mb = (n: number) => n.toFixed(0);
  const delta = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(0)}`;
  const value = (key: keyof MemoryParts) => (since ? delta(parts[key] - since[key]) : mb(parts[key]));
  const part = ([label, key]: [string, keyof MemoryParts]) =>
    key === 'mainHeap'
      ? `${label} ${value(key)} (in use ${value('mainHeapUsed')})`
      : `${label} ${value(key)}`;
  return `RSS ${mb(parts.rss)} MB${since ? ` (${delta(parts.rss - since.rss)})` : ''}: ${fields.map(part).join(', ')}; WASM memory size ${mb(parts.wasmSize)} MB`;
}

/**
 * The process's memory once idle: V8 keeps its heap at the working size of the last load until its
 * memory reducer notices the idleness (some 10-40 s later) and collects and shrinks it, ~50 MB here.
 * Two readings compare only when both are taken so: one at an arbitrary moment after a load differs
 * by that much from the next depending on where the collector was. Samples every 2 s for at most
 * `maxMs`, and stops once the main heap has shrunk by a third; returns the lowest reading.
 */
export async function settledMemory(
  pid: number,
  metricsUrl: string,
  maxMs = 60_000,
): Promise<{ parts: MemoryParts; seconds: number } | undefined> {
  const started = Date.now();
  const first = await memoryParts(pid, metricsUrl);
  if (!first) return undefined;
  let lowest = first;
  while (Date.now() - started < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const now = await memoryParts(pid, metricsUrl);
    if (!now) break;
    if (now.rss < lowest.rss) lowest = now;
    if (now.mainHeap < first.mainHeap * (2 / 3)) break;
  }
  return { parts: lowest, seconds: (Date.now() - started) / 1000 };
}

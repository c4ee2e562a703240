import { readdir, readFile } from 'node:fs/promises';

/** What /proc/<pid>/stat says about one process (Linux). */
export interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  /** User plus system CPU time, in clock ticks. */
  cpuTicks: number;
  rssPages: number;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses, so fields are read after the last ")". */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open === -1 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  // fields[0] is field 3 of proc(5): state; ppid 4, pgrp 5, utime 14, stime 15, rss 24.
  const at = (field: number): number => Number(fields[field - 3]);
  const stat = { pid, ppid: at(4), pgrp: at(5), cpuTicks: at(14) + at(15), rssPages: at(24) };
  return Object.values(stat).every(Number.isFinite) ? stat : undefined;
}

/** Resident memory from /proc/<pid>/status (`VmRSS: 1234 kB`), in bytes. */
export function parseVmRss(text: string): number | undefined {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** CPU use between two samples, in percent of one core (200 = two cores busy). */
export function cpuPercent(ticks: number, elapsedMs: number, ticksPerSecond = CLOCK_TICKS): number {
  if (elapsedMs <= 0 || ticks <= 0) return 0;
  return Math.round(((ticks / ticksPerSecond) * 1_000_000) / elapsedMs) / 10;
}

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS = 100;
const PAGE_BYTES = 4096;

export interface ProcessUsage {
  /** Processes in the job's process group. */
  processes: number;
  /** Since the previous sample, percent of one core. */
  cpuPercent: number;
  rssBytes: number;
}

/**
 * Samples the CPU and memory of a job: every process in its process group (the job is started as a
 * group leader, so its children and grandchildren count too). Linux only; elsewhere `sample` gives
 * undefined and the status line shows no figures.
 */
export class ProcessGroupSampler {
  private previous = new Map<number, number>();
  private previousAt: number | undefined;

  constructor(
    private readonly pgrp: number,
    private readonly procDir = '/proc',
  ) {}

  async sample(now: number): Promise<ProcessUsage | undefined> {
    let names: string[];
    try {
      names = await readdir(this.procDir);
    } catch {
      return undefined;
    }
    const members: ProcStat[] = [];
    await Promise.all(
      names
        .filter((name) => /^\d+$/.test(name))
        .map(async (name) => {
          const stat = parseProcStat(await readFile(`${this.procDir}/${name}/stat`, 'utf8').catch(() => ''));
          if (stat?.pgrp === this.pgrp) members.push(stat);
        }),
    );
    if (members.length === 0) return undefined;
    let ticks = 0;
    let rssBytes = 0;
    const current = new Map<number, number>();
    for (const m of members) {
      current.set(m.pid, m.cpuTicks);
      ticks += Math.max(
        0,
        m.cpuTicks - (this.previous.get(m.pid) ?? (this.previousAt === undefined ? m.cpuTicks : 0)),
      );
      const status = await readFile(`${this.procDir}/${m.pid}/status`, 'utf8').catch(() => '');
      rssBytes += parseVmRss(status) ?? m.rssPages * PAGE_BYTES;
    }
    const elapsed = this.previousAt === undefined ? 0 : now - this.previousAt;
    this.previous = current;
    this.previousAt = now;
    return { processes: members.length, cpuPercent: cpuPercent(ticks, elapsed), rssBytes };
  }
}

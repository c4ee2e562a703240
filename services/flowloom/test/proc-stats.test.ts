import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuPercent, ProcessGroupSampler, parseProcStat, parseVmRss } from '../src/run/proc-stats.js';

// A line as /proc/<pid>/stat has it, with a command name holding spaces and parentheses.
function statLine(pid: number, pgrp: number, utime: number, stime: number, comm = 'node (worker) x'): string {
  const after = [
    'S',
    1,
    pgrp,
    pgrp,
    0,
    -1,
    4194304,
    100,
    0,
    0,
    0,
    utime,
    stime,
    0,
    0,
    20,
    0,
    11,
    0,
    500,
    1e9,
    12000,
  ];
  return `${pid} (${comm}) ${after.join(' ')} 0 0 0\n`;
}

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('process statistics', () => {
  it('when a stat line has spaces and parentheses in the command name, then the fields are still read right', () => {
    expect(parseProcStat(statLine(42, 40, 150, 50))).toEqual({
      pid: 42,
      ppid: 1,
      pgrp: 40,
      cpuTicks: 200,
      rssPages: 12000,
    });
    expect(parseProcStat('garbage')).toBeUndefined();
  });

  it('when the real /proc/self/stat is read, then it parses to this process', async () => {
    const { readFileSync } = await import('node:fs');
    let text: string;
    try {
      text = readFileSync('/proc/self/stat', 'utf8');
    } catch {
      return; // not Linux
    }
    expect(parseProcStat(text)?.pid).toBe(process.pid);
  });

  it('when memory and CPU are computed, then VmRSS is in bytes and CPU is percent of one core', () => {
    expect(parseVmRss('Name:\tnode\nVmRSS:\t  51200 kB\n')).toBe(51200 * 1024);
    expect(parseVmRss('Name:\tkthread\n')).toBeUndefined();
    expect(cpuPercent(50, 1_000)).toBe(50);
    expect(cpuPercent(200, 1_000)).toBe(200);
    expect(cpuPercent(10, 0)).toBe(0);
  });

  it('when the job has several processes, then the group is summed and processes of other groups are left out', async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowloom-proc-'));
    const proc = (pid: number, pgrp: number, ticks: number, rssKb: number): void => {
      mkdirSync(join(dir!, String(pid)), { recursive: true });
      writeFileSync(join(dir!, String(pid), 'stat'), statLine(pid, pgrp, ticks, 0));
      writeFileSync(join(dir!, String(pid), 'status'), `VmRSS:\t${rssKb} kB\n`);
    };
    proc(100, 100, 10, 1024);
    proc(101, 100, 5, 2048);
    proc(200, 200, 999, 999999);
    mkdirSync(join(dir, 'self'));
    const sampler = new ProcessGroupSampler(100, dir);
    expect(await sampler.sample(0)).toEqual({ processes: 2, cpuPercent: 0, rssBytes: 3 * 1024 * 1024 });
    proc(100, 100, 60, 1024);
    proc(101, 100, 5, 2048);
    proc(102, 100, 20, 1024);
    expect(await sampler.sample(1_000)).toEqual({ processes: 3, cpuPercent: 70, rssBytes: 4 * 1024 * 1024 });
  });

  it('when the group has no process left, then there is no sample', async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowloom-proc-'));
    expect(await new ProcessGroupSampler(5, dir).sample(0)).toBeUndefined();
    expect(await new ProcessGroupSampler(5, join(dir, 'missing')).sample(0)).toBeUndefined();
  });
});

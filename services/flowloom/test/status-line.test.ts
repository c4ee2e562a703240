import { describe, expect, it } from 'vitest';
import { formatStatus, PlainConsole, type StatusSnapshot, TtyConsole } from '../src/run/status-line.js';

const snapshot: StatusSnapshot = {
  job: 'agent-1a2b3c',
  attempt: 1,
  state: 'running',
  elapsedMs: 12_400,
  pid: 4242,
  usage: { processes: 2, cpuPercent: 37.6, rssBytes: 48 * 1024 * 1024 },
  requests: 14,
  refused: 1,
  tokens: 5_200,
  flagged: 2,
  enforced: 1,
  last: 'throttle (runaway-guard/burst)',
};

describe('status line', () => {
  it('when a job runs, then one line shows its state, process, AI traffic and policy findings', () => {
    expect(formatStatus(snapshot, 200)).toBe(
      'agent-1a2b3c #1 · running · 12.4 s · pid 4242 · cpu 38% · mem 48 MB · ai 14 req (1 refused) 5200 tok · policy 2 flagged 1 enforced · last: throttle (runaway-guard/burst)',
    );
  });

  it('when the terminal is narrow, then the line is cut to fit', () => {
    const line = formatStatus(snapshot, 40);
    expect(line).toHaveLength(40);
    expect(line.endsWith('…')).toBe(true);
  });

  it('when there is no process sample (not Linux, between attempts), then the figures are left out', () => {
    const { pid: _p, usage: _u, ...rest } = snapshot;
    expect(formatStatus({ ...rest, state: 'waiting to restart' })).not.toMatch(/cpu|mem|pid/);
  });

  it('when on a terminal, then the status line is cleared before each line of output and drawn again after', () => {
    const writes: string[] = [];
    const stream = { write: (t: string) => writes.push(t), columns: 200 };
    const tty = new TtyConsole(stream, stream);
    tty.status(snapshot);
    writes.length = 0;
    tty.output('stdout', 'hello');
    expect(writes[0]).toBe('\r\x1b[2K');
    expect(writes[1]).toBe('hello\n');
    expect(writes[2]).toContain('agent-1a2b3c #1');
    tty.close();
    expect(writes.at(-1)).toBe('\r\x1b[2K');
  });

  it('when not on a terminal, then the status is a plain line at most every interval and only when it changed', () => {
    const lines: string[] = [];
    let now = 0;
    const plain = new PlainConsole(
      { out: (t) => lines.push(`out:${t}`), err: (t) => lines.push(`err:${t}`) },
      10_000,
      () => now,
    );
    plain.status(snapshot);
    now = 5_000;
    plain.status({ ...snapshot, requests: 15 });
    now = 20_000;
    plain.status({ ...snapshot, elapsedMs: 30_000 });
    now = 40_000;
    plain.status({ ...snapshot, requests: 16 });
    plain.output('stdout', 'job says hi');
    plain.notice('STOPPED');
    expect(lines.filter((l) => l.startsWith('err:flowloom: status'))).toHaveLength(2);
    expect(lines).toContain('out:job says hi');
    expect(lines).toContain('err:flowloom: STOPPED');
  });
});

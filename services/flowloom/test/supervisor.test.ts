import { describe, expect, it } from 'vitest';
import type { JobObservation, JobWatcher } from '../src/run/job-watcher.js';
import { PlatformApi } from '../src/run/platform-api.js';
import type { StatusSnapshot, SupervisorConsole } from '../src/run/status-line.js';
import { type SupervisionResult, Supervisor, type SupervisorOptions } from '../src/run/supervisor.js';
import { formatTimeline, type PolicyFinding, type TimelineEvent } from '../src/run/timeline.js';

// The supervisor on real child processes (small `node -e` scripts); the platform is a fake admin API
// and the policy findings are handed in by the test, as a watcher would.

const VERSION = 'cd'.repeat(32);

function finding(extra: Partial<PolicyFinding> = {}): PolicyFinding {
  return {
    decisionId: 'dec-stop',
    policy: 'runaway-guard',
    version: VERSION,
    mode: 'enforce',
    rule: 'agent-loop',
    action: 'stop_job',
    enforced: true,
    reason: 'the job is looping',
    signals: { repeated_prompts: 3 },
    thresholds: [{ path: 'signals.repeated_prompts', operator: '>=', value: 3 }],
    ...extra,
  };
}

class TestConsole implements SupervisorConsole {
  readonly lines: string[] = [];
  readonly notices: string[] = [];
  constructor(private readonly onLine: (line: string) => void = () => {}) {}
  output(_stream: 'stdout' | 'stderr', line: string): void {
    this.lines.push(line);
    this.onLine(line);
  }
  notice(text: string): void {
    this.notices.push(text);
  }
  status(_s: StatusSnapshot): void {}
  close(): void {}
}

class ManualWatcher implements JobWatcher {
  observe: ((o: JobObservation) => void) | undefined;
  pokes = 0;
  watch(_job: string, observe: (o: JobObservation) => void) {
    this.observe = observe;
    return { poke: () => this.pokes++, stop: async () => {} };
  }
}

/**
 * A fake admin API; `missing` paths answer 404 "No endpoint" as an older platform would, and slowly,
 * so that the supervisor has more to report before it learns that.
 */
function fakeApi(missing: RegExp = /^$/) {
  const calls: string[] = [];
  const reports: Array<Record<string, unknown>> = [];
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push(`${init?.method ?? 'GET'} ${url.pathname}`);
    if (missing.test(url.pathname)) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return new Response(JSON.stringify({ error: { message: `No endpoint POST ${url.pathname}.` } }), {
        status: 404,
      });
    }
    if (url.pathname.endsWith('/interventions')) reports.push(JSON.parse(String(init?.body)));
    const body =
      url.pathname === '/api/v1/keys' ? { id: 'key-1', key: 'flk_job_secret', hint: 'flk_job_…' } : {};
    return new Response(JSON.stringify(body), { status: url.pathname === '/api/v1/keys' ? 201 : 200 });
  }) as typeof fetch;
  return { api: new PlatformApi('http://platform.test', 'flk_admin', fetchImpl), calls, reports };
}

function supervise(
  script: string,
  options: Partial<SupervisorOptions> & {
    onLine?: (line: string, watcher: ManualWatcher) => void;
    missing?: RegExp;
  } = {},
) {
  const watcher = new ManualWatcher();
  const { api, calls, reports } = fakeApi(options.missing);
  const console = new TestConsole((line) => options.onLine?.(line, watcher));
  const supervisor = new Supervisor({
    job: 'job-1',
    command: process.execPath,
    args: ['-e', script],
    gatewayUrl: 'http://127.0.0.1:9',
    api,
    watcher,
    console,
    restart: { maxRestarts: 0, baseDelayMs: 10, maxDelayMs: 10 },
    graceMs: 5_000,
    env: { ...process.env, FLOWLOOM_ADMIN_KEY: 'flk_boot_secret' },
    sampleEveryMs: 100,
    ...options,
  });
  return { supervisor, watcher, calls, reports, console, run: () => supervisor.run() };
}

const kinds = (r: SupervisionResult): string[] => r.entries.map((e) => e.event.kind);
const events = <K extends TimelineEvent['kind']>(r: SupervisionResult, kind: K) =>
  r.entries.map((e) => e.event).filter((e): e is Extract<TimelineEvent, { kind: K }> => e.kind === kind);

const WAIT_FOREVER = 'console.log("ready"); setInterval(() => {}, 1000);';

describe('supervising a job', () => {
  it("when the job runs to its end, then it gets its own key and endpoint (never the admin key), and the exit code is the job's", async () => {
    const t = supervise(
      'console.log(JSON.stringify({ job: process.env.FLOWLOOM_JOB, base: process.env.OPENAI_BASE_URL, key: process.env.OPENAI_API_KEY, admin: process.env.FLOWLOOM_ADMIN_KEY ?? null })); process.exit(7)',
    );
    const result = await t.run();
    expect(result.exitCode).toBe(7);
    const env = JSON.parse(t.console.lines[0]!) as Record<string, string | null>;
    expect(env).toMatchObject({ job: 'job-1', key: 'flk_job_secret', admin: null });
    expect(env.base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(kinds(result)).toEqual(['key', 'start', 'exit', 'key', 'end']);
    expect(t.calls).toEqual(['POST /api/v1/keys', 'POST /api/v1/keys/key-1/revoke']);
  });

  it('when a policy stops the job, then it gets SIGTERM, the exit code says FlowLoom stopped it, and the timeline says why', async () => {
    const t = supervise(
      `process.on('SIGTERM', () => { console.log('bye'); process.exit(0); }); ${WAIT_FOREVER}`,
      {
        onLine: (line, w) => {
          if (line === 'ready') w.observe?.({ kind: 'finding', finding: finding() });
        },
      },
    );
    const result = await t.run();
    expect(result.exitCode).toBe(3);
    expect(t.console.lines).toEqual(['ready', 'bye']);
    expect(kinds(result)).toEqual(['key', 'start', 'decision', 'signal', 'exit', 'key', 'end']);
    expect(events(result, 'signal')[0]).toMatchObject({ signal: 'SIGTERM' });
    const text = formatTimeline(result.entries, {
      job: 'job-1',
      command: 'x',
      durationMs: result.durationMs,
    }).join('\n');
    expect(text).toContain(
      'stopped   stop_job: policy "runaway-guard" version cdcdcdcdcdcd (enforce), rule "agent-loop"',
    );
    expect(text).toContain('why       the job is looping');
    expect(text).toContain('values    repeated_prompts=3 (rule: >= 3)');
    expect(text).toMatch(
      /exit code 3: FlowLoom stopped the job \(exit 3\): a policy stopped it; restarts are off/,
    );
  });

  it('when the job ignores SIGTERM, then SIGKILL follows after the grace period', async () => {
    const t = supervise(`process.on('SIGTERM', () => console.log('ignoring')); ${WAIT_FOREVER}`, {
      graceMs: 300,
      onLine: (line, w) => {
        if (line === 'ready') w.observe?.({ kind: 'finding', finding: finding() });
      },
    });
    const result = await t.run();
    expect(result.exitCode).toBe(3);
    expect(events(result, 'signal').map((s) => s.signal)).toEqual(['SIGTERM', 'SIGKILL']);
    expect(events(result, 'exit')[0]?.end).toEqual({ kind: 'signaled', signal: 'SIGKILL' });
    expect(events(result, 'exit')[0]?.afterSignalMs).toBeGreaterThanOrEqual(300);
  });

  it('when a finding is only shadow, then it is recorded and the job is left alone', async () => {
    const t = supervise('console.log("ready"); setTimeout(() => process.exit(0), 150);', {
      onLine: (line, w) => {
        if (line === 'ready')
          w.observe?.({ kind: 'finding', finding: finding({ enforced: false, mode: 'shadow' }) });
      },
    });
    const result = await t.run();
    expect(result.exitCode).toBe(0);
    expect(events(result, 'signal')).toEqual([]);
    expect(events(result, 'decision')[0]?.finding.enforced).toBe(false);
    expect(t.console.notices.some((n) => n.startsWith('FLAGGED (shadow), would stop_job'))).toBe(true);
  });

  it('when a policy stops the job and restarts are allowed, then the stop is cleared and the job starts again', async () => {
    const t = supervise(
      `if (process.env.FLOWLOOM_ATTEMPT === '2') { console.log('attempt 2 done'); process.exit(0); } ${WAIT_FOREVER}`,
      {
        restart: { maxRestarts: 1, baseDelayMs: 10, maxDelayMs: 10 },
        onLine: (line, w) => {
          if (line === 'ready') {
            w.observe?.({ kind: 'finding', finding: finding() });
            // The platform keeps reporting the same stop until the supervisor clears it.
            w.observe?.({
              kind: 'stopped',
              stop: { actor: 'policy', reason: 'loop', decisionId: 'dec-stop', policy: 'p' },
            });
          }
        },
      },
    );
    const result = await t.run();
    expect(result.exitCode).toBe(0);
    expect(kinds(result)).toEqual([
      'key',
      'start',
      'decision',
      'signal',
      'exit',
      'cleared',
      'restart',
      'start',
      'exit',
      'key',
      'end',
    ]);
    expect(t.calls).toContain('POST /api/v1/jobs/job-1/clear');
  });

  it('when the job crashes, then it is restarted within the limit and the last exit code is kept', async () => {
    const t = supervise('console.log("attempt", process.env.FLOWLOOM_ATTEMPT); process.exit(4)', {
      restart: { maxRestarts: 2, baseDelayMs: 10, maxDelayMs: 10 },
    });
    const result = await t.run();
    expect(result.exitCode).toBe(4);
    expect(t.console.lines).toEqual(['attempt 1', 'attempt 2', 'attempt 3']);
    expect(events(result, 'restart').map((r) => r.attempt)).toEqual([2, 3]);
    expect(t.calls).not.toContain('POST /api/v1/jobs/job-1/clear');
  });

  it('when an admin stops the job, then it is stopped and not restarted', async () => {
    const t = supervise(WAIT_FOREVER, {
      restart: { maxRestarts: 3, baseDelayMs: 10, maxDelayMs: 10 },
      onLine: (line, w) => {
        if (line === 'ready')
          w.observe?.({ kind: 'stopped', stop: { actor: 'key/9 (ops)', reason: 'enough' } });
      },
    });
    const result = await t.run();
    expect(result.exitCode).toBe(3);
    expect(events(result, 'start')).toHaveLength(1);
    expect(result.why).toContain('an admin stopped the job');
  });

  it('when the user interrupts flowloom run, then the signal is passed on, nothing restarts and the exit code is 130', async () => {
    let supervisor: Supervisor | undefined;
    const t = supervise(
      `process.on('SIGINT', () => { console.log('interrupted'); process.exit(130); }); ${WAIT_FOREVER}`,
      {
        restart: { maxRestarts: 3, baseDelayMs: 10, maxDelayMs: 10 },
        onLine: (line) => {
          if (line === 'ready') supervisor?.interrupt('SIGINT');
        },
      },
    );
    supervisor = t.supervisor;
    const result = await t.run();
    expect(result.exitCode).toBe(130);
    expect(t.console.lines).toEqual(['ready', 'interrupted']);
    expect(events(result, 'signal')[0]).toMatchObject({ signal: 'SIGINT' });
    expect(events(result, 'start')).toHaveLength(1);
    expect(t.calls).toContain('POST /api/v1/keys/key-1/revoke');
  });

  it('when the job keeps a core busy, then a CPU alert is recorded', async () => {
    const t = supervise('const end = Date.now() + 1500; while (Date.now() < end) {}', {
      watches: { cpu: { percent: 10, forMs: 300 } },
    });
    const result = await t.run();
    expect(events(result, 'watch')[0]).toMatchObject({ watch: 'cpu', action: 'alert' });
  });

  it('when the job prints the same line again and again, then an alert is recorded once', async () => {
    const t = supervise('for (let i = 0; i < 30; i++) console.log("retrying in " + i + " s");', {
      watches: { repeatedOutput: { threshold: 5, windowLines: 20 } },
    });
    const result = await t.run();
    const alerts = events(result, 'watch');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ watch: 'repeated_output', action: 'alert', values: { count: 5 } });
    // Recorded on the platform with the value, the limit and the settings' hash as version.
    expect(t.reports).toEqual([
      expect.objectContaining({
        watch: 'repeated_output',
        action: 'alert',
        version: expect.stringMatching(/^[0-9a-f]{64}$/),
        signals: { repeated_lines: 5, window_lines: 20 },
        thresholds: [{ path: 'output.repeated_lines', operator: '>=', value: 5 }],
        keyId: 'key-1',
        attempt: 1,
      }),
    ]);
  });

  it('when the platform has no endpoint for supervisor interventions, then the timeline says so once and the job goes on', async () => {
    const t = supervise('for (let i = 0; i < 30; i++) console.log(i % 2 ? "retry a" : "poll b");', {
      watches: { repeatedOutput: { threshold: 5, windowLines: 20 } },
      missing: /\/interventions$/,
    });
    const result = await t.run();
    expect(result.exitCode).toBe(0);
    expect(events(result, 'watch')).toHaveLength(2);
    expect(t.calls.filter((c) => c.endsWith('/interventions'))).toHaveLength(1);
    const notes = events(result, 'note').filter((n) => n.text.includes('does not record supervisor'));
    expect(notes).toHaveLength(1);
  });

  it.runIf(process.platform === 'linux')(
    'when the job uses more memory than allowed, then it is stopped by the local limit',
    async () => {
      const t = supervise(WAIT_FOREVER, { watches: { maxMemoryBytes: 1024 * 1024 } });
      const result = await t.run();
      expect(result.exitCode).toBe(3);
      expect(events(result, 'watch')[0]).toMatchObject({ watch: 'memory', action: 'stop' });
      const report = t.reports[0] as { signals: { rss_mb: number }; thresholds: unknown[] };
      expect(report).toMatchObject({ watch: 'memory', action: 'stop_job', pid: expect.any(Number) });
      expect(report.signals.rss_mb).toBeGreaterThan(1);
      expect(report.thresholds).toEqual([{ path: 'process.rss_mb', operator: '>', value: 1 }]);
    },
  );

  it('when the command does not exist, then the exit code is 127 and the key is still revoked', async () => {
    const t = supervise('', { command: 'flowloom-no-such-command-xyz', args: [] });
    const result = await t.run();
    expect(result.exitCode).toBe(127);
    expect(t.calls).toContain('POST /api/v1/keys/key-1/revoke');
  });
});

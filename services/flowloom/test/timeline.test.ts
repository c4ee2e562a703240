import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  formatTimeline,
  formatValues,
  type PolicyFinding,
  type TimelineEntry,
} from '../src/run/timeline.js';

const VERSION = '1df27a402b3b9c0e5f2a4b6c8d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7081920';

function loop(id: string, repeated: number, extra: Partial<PolicyFinding> = {}): PolicyFinding {
  return {
    decisionId: id,
    policy: 'runaway-guard',
    version: VERSION,
    mode: 'shadow',
    rule: 'agent-loop',
    action: 'stop_job',
    enforced: false,
    reason: 'the job is looping',
    signals: { repeated_prompts: repeated, requests_per_minute: 7, error_rate: 0 },
    thresholds: [{ path: 'signals.repeated_prompts', operator: '>=', value: 3 }],
    ...extra,
  };
}

const header = { job: 'nightly-ab12cd', command: 'node agent.mjs', durationMs: 4_200 };

describe('timeline', () => {
  it('when a job is flagged, stopped and ends, then each step reads with its time, what and why', () => {
    const entries: TimelineEntry[] = [
      { at: 0, event: { kind: 'key', action: 'created', hint: 'flk_abcd…' } },
      { at: 20, event: { kind: 'start', attempt: 1, pid: 4242, command: 'node agent.mjs' } },
      {
        at: 1_500,
        event: {
          kind: 'decision',
          finding: loop('d-2', 3, { mode: 'enforce', enforced: true }),
        },
      },
      {
        at: 1_510,
        event: {
          kind: 'signal',
          signal: 'SIGTERM',
          pid: 4242,
          why: 'policy "runaway-guard" stopped the job',
        },
      },
      {
        at: 1_600,
        event: {
          kind: 'exit',
          attempt: 1,
          end: { kind: 'exited', code: 143 },
          durationMs: 1_580,
          afterSignalMs: 90,
        },
      },
      { at: 1_610, event: { kind: 'key', action: 'revoked', hint: 'flk_abcd…' } },
      { at: 1_620, event: { kind: 'end', exitCode: 3, why: 'FlowLoom stopped the job' } },
    ];
    expect(formatTimeline(entries, header)).toEqual([
      'Timeline of job nightly-ab12cd (node agent.mjs), 4.2 s:',
      '     +0.00s  key       job key created (flk_abcd…)',
      '     +0.02s  start     attempt 1: pid 4242  node agent.mjs',
      '     +1.50s  stopped   stop_job: policy "runaway-guard" version 1df27a402b3b (enforce), rule "agent-loop"',
      '             why       the job is looping',
      '             values    repeated_prompts=3 (rule: >= 3), requests_per_minute=7',
      '             decision  d-2',
      '     +1.51s  signal    SIGTERM to pid 4242 and its process group: policy "runaway-guard" stopped the job',
      '     +1.60s  exit      attempt 1 exited with code 143 after 1.6 s, 90 ms after the signal',
      '     +1.61s  key       job key revoked (flk_abcd…)',
      '     +1.62s  end       exit code 3: FlowLoom stopped the job',
    ]);
  });

  it('when the same rule flags request after request, then the run is folded into one entry with its count and how the values moved', () => {
    const entries: TimelineEntry[] = [3, 4, 5].map((n, i) => ({
      at: 1_000 + i * 100,
      event: { kind: 'decision', finding: loop(`d-${n}`, n) },
    }));
    const lines = formatTimeline(entries, header);
    expect(lines[1]).toBe(
      '     +1.00s  flagged   would stop_job: policy "runaway-guard" version 1df27a402b3b (shadow), rule "agent-loop" ×3 until +1.20s',
    );
    expect(lines).toContain(
      '             values    repeated_prompts=3→5 (rule: >= 3), requests_per_minute=7',
    );
    expect(lines).toContain('             decision  d-3 (first) … d-5 (last)');
    expect(lines).toHaveLength(5);
  });

  it('when findings differ (mode, rule) or something happens between them, then they stay apart', () => {
    const entries: TimelineEntry[] = [
      { at: 100, event: { kind: 'decision', finding: loop('a', 3) } },
      { at: 200, event: { kind: 'decision', finding: loop('b', 4, { mode: 'enforce', enforced: true }) } },
      { at: 300, event: { kind: 'note', text: 'something' } },
      { at: 400, event: { kind: 'decision', finding: loop('c', 5, { mode: 'enforce', enforced: true }) } },
    ];
    const heads = formatTimeline(entries, header).filter((l) => / {2}(flagged|stopped|note) /.test(l));
    expect(heads).toHaveLength(4);
    expect(heads.every((l) => !l.includes('×'))).toBe(true);
  });

  it('when entries arrive out of order (a platform event after the signal it caused), then they are shown in time order', () => {
    const entries: TimelineEntry[] = [
      { at: 500, event: { kind: 'signal', signal: 'SIGTERM', pid: 1, why: 'stop' } },
      { at: 450, event: { kind: 'decision', finding: loop('x', 3, { enforced: true, mode: 'enforce' }) } },
    ];
    const lines = formatTimeline(entries, header);
    expect(lines.findIndex((l) => l.includes('stop_job:'))).toBeLessThan(
      lines.findIndex((l) => l.includes('SIGTERM')),
    );
  });

  it('when a throttle, an alert with a channel and a local watch are shown, then their details are there', () => {
    const throttle = loop('t', 0, {
      rule: 'burst',
      action: 'throttle',
      mode: 'enforce',
      enforced: true,
      detail: 'delay 300 ms',
      signals: { requests_per_minute: 12 },
      thresholds: [{ path: 'signals.requests_per_minute', operator: '>=', value: 10 }],
    });
    const alert = loop('al', 0, { action: 'alert', enforced: true, mode: 'enforce', channel: 'ops' });
    const lines = formatTimeline(
      [
        { at: 1, event: { kind: 'decision', finding: throttle } },
        { at: 2, event: { kind: 'decision', finding: alert } },
        {
          at: 3,
          event: {
            kind: 'watch',
            watch: 'memory',
            action: 'stop',
            reason: 'memory 600 MB is above --max-memory 512 MB',
            values: { rss_mb: 600, limit_mb: 512 },
          },
        },
      ],
      header,
    );
    expect(lines[1]).toContain('throttled throttle (delay 300 ms): policy "runaway-guard"');
    expect(lines).toContain('             values    requests_per_minute=12 (rule: >= 10)');
    expect(lines).toContain('             channel   ops');
    expect(lines.some((l) => l.includes('limit     stop: memory 600 MB is above --max-memory 512 MB'))).toBe(
      true,
    );
    expect(lines).toContain('             values    rss_mb=600, limit_mb=512');
    expect(lines).toContain('             by        flowloom run (local memory watch)');
  });

  it('when a finding has no recorded values, then the values line is left out rather than invented', () => {
    const bare = loop('s', 0, { signals: undefined, thresholds: undefined });
    expect(formatValues(bare)).toBe('');
    const lines = formatTimeline([{ at: 0, event: { kind: 'decision', finding: bare } }], header);
    expect(lines.some((l) => l.includes('values'))).toBe(false);
  });

  it("when only the job's signals seen afterwards are known, then they are shown as such, not as the decision's values", () => {
    const bare = loop('s', 0, {
      signals: undefined,
      thresholds: undefined,
      observed: { requests_per_minute: 3 },
    });
    const lines = formatTimeline([{ at: 0, event: { kind: 'decision', finding: bare } }], header);
    expect(lines).toContain(
      "             seen      requests_per_minute=3 (the job's signals just after, as flowloom run saw them)",
    );
  });

  it('when durations are formatted, then the unit fits the size', () => {
    expect(formatDuration(250)).toBe('250 ms');
    expect(formatDuration(4_200)).toBe('4.2 s');
    expect(formatDuration(185_000)).toBe('3 min 5 s');
  });
});

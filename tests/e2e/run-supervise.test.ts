import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AGENT,
  RUN_TIMEOUT_MS,
  type RunPlatform,
  START_TIMEOUT_MS,
  startRunPlatform,
} from './run-support.js';

// `flowloom run` as a user runs it (see run-support.ts), with a policy in force that stops loops.

const ADMIN_KEY = 'flk_e2e-run-admin-key-0123456789abcdefghij';

const POLICY = `
name: loop-guard
rules:
  - id: same-question
    description: the same prompt keeps coming back
    condition: signals.repeated_prompts >= 2
    action: stop_job
    message: the job asked the same question 3 times
`;

let platform: RunPlatform;
const api = (path: string) => platform.api(path);
const flowloomRun = (args: string[], extra: Record<string, string> = {}) => platform.run(args, extra);
const jobKey = (job: string) => platform.jobKey(job);

beforeAll(async () => {
  platform = await startRunPlatform(POLICY, ADMIN_KEY);
}, START_TIMEOUT_MS + 10_000);

afterAll(async () => {
  await platform?.close();
}, 30_000);

describe('flowloom run', () => {
  it(
    'when a supervised agent loops, then the policy stops it, SIGKILL ends it after it ignores SIGTERM, the timeline says why, and its key is revoked',
    async () => {
      const { code, stdout, stderr } = await flowloomRun([
        '--name',
        'looper',
        '--grace-seconds',
        '1',
        '--',
        process.execPath,
        AGENT,
      ]);
      const output = `${stdout}\n${stderr}`;
      expect(code, output).toBe(3);
      const job = /job (looper-[0-9a-f]{6}): /.exec(stderr)?.[1];
      expect(job, output).toBeDefined();
      expect(stdout).toContain(`agent: job ${job}, attempt 1`);
      expect(stdout).toContain('agent: SIGTERM ignored, still looping');

      // The timeline: the stop with its policy, version, mode, rule, reason and values, then the signals.
      const active = (await api('/api/v1/gateway/policy')) as {
        policies: Array<{ name: string; stable?: string }>;
      };
      const version = (active.policies.find((p) => p.name === 'loop-guard')?.stable ?? '').slice(0, 12);
      expect(version).toMatch(/^[0-9a-f]{12}$/);
      expect(stderr).toContain(`Timeline of job ${job}`);
      expect(stderr).toMatch(
        new RegExp(
          `stopped +stop_job: policy "loop-guard" version ${version} \\(enforce\\), rule "same-question"`,
        ),
      );
      expect(stderr).toContain('why       the job asked the same question 3 times');
      expect(stderr).toMatch(/values +.*repeated_prompts=2/);
      const timeline = stderr.slice(stderr.indexOf('Timeline of job'));
      const order = [
        'stop_job:',
        'SIGTERM to pid',
        'SIGKILL to pid',
        'was killed by SIGKILL',
        'job key revoked',
      ];
      const positions = order.map((text) => timeline.indexOf(text));
      expect(
        positions.every((p) => p >= 0),
        timeline,
      ).toBe(true);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      expect(timeline).toContain('exit code 3: FlowLoom stopped the job');

      // The platform saw the job: its requests were tagged and decided, it is stopped by that decision.
      const status = (await api(`/api/v1/jobs/${job}`)) as Record<string, unknown>;
      expect(status).toMatchObject({
        status: 'stopped',
        stoppedBy: { policy: 'loop-guard', rule: 'same-question' },
      });
      const { data: decisions } = (await api(`/api/v1/decisions?job=${job}`)) as {
        data: Array<{ verdict: string; job: string }>;
      };
      expect(decisions.filter((d) => d.verdict === 'allow').length).toBeGreaterThanOrEqual(2);
      expect(decisions.some((d) => d.verdict === 'stop_job')).toBe(true);
      const key = await jobKey(job!);
      expect(key?.revokedAt).toBeTruthy();
    },
    RUN_TIMEOUT_MS + 10_000,
  );

  it(
    'when a supervised job finishes by itself, then its exit code is passed on and nothing intervenes',
    async () => {
      const { code, stdout, stderr } = await flowloomRun(['--name', 'tidy', '--', process.execPath, AGENT], {
        LOOPING_AGENT_STEPS: '3',
      });
      expect(code, `${stdout}\n${stderr}`).toBe(0);
      expect(stdout).toMatch(/agent: answer 3: \d+ tokens/);
      expect(stderr).toContain('flowloom: policies in force: loop-guard (');
      const timeline = stderr.slice(stderr.indexOf('Timeline of job'));
      expect(timeline).not.toMatch(/ (stopped|flagged|signal|throttled) /);
      expect(timeline).toContain("exit code 0: the job's own exit code");
    },
    RUN_TIMEOUT_MS + 10_000,
  );

  it(
    'when the supervisor stops a job itself (its memory limit), then the stop reaches the audit trail with the value, the limit and the decision',
    async () => {
      const { code, stdout, stderr } = await flowloomRun([
        '--name',
        'hungry',
        '--max-memory',
        '1',
        '--grace-seconds',
        '1',
        '--',
        process.execPath,
        '-e',
        'setInterval(() => {}, 1000)',
      ]);
      const output = `${stdout}\n${stderr}`;
      expect(code, output).toBe(3);
      const job = /job (hungry-[0-9a-f]{6}): /.exec(stderr)?.[1];
      expect(job, output).toBeDefined();
      expect(stderr).not.toContain('could not be recorded');

      // The ledger: an intervention event of origin supervisor, appended by the audit consumer.
      type Entry = { job: string | null; event: { data: Record<string, unknown> } | null };
      let entries: Entry[] = [];
      for (let i = 0; i < 100 && entries.length === 0; i++) {
        const page = (await api(
          `/api/v1/audit/entries?type=dev.flowloom.policy.intervention.v1&job=${job}`,
        )) as { data: Entry[] };
        entries = page.data;
        if (entries.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(entries).toHaveLength(1);
      const data = entries[0]!.event!.data as {
        decisionId: string;
        reason: string;
        signals: { rss_mb: number };
        thresholds: unknown[];
        supervisor: { pid: number; actor: string };
      };
      expect(data).toMatchObject({
        job,
        origin: 'supervisor',
        policy: 'flowloom-run',
        rule: 'memory',
        action: 'stop_job',
        enforced: true,
        version: expect.stringMatching(/^[0-9a-f]{64}$/),
        thresholds: [{ path: 'process.rss_mb', operator: '>', value: 1 }],
      });
      expect(data.signals.rss_mb).toBeGreaterThan(1);
      expect(data.supervisor.pid).toBeGreaterThan(0);
      expect(data.supervisor.actor).toMatch(/^key\//);
      expect(data.reason).toContain('is above --max-memory');
      // And the policy service lists it with the job's interventions, under the same decision id.
      const listed = (await api(`/api/v1/jobs/${job}/interventions`)) as {
        data: Array<{ decisionId: string; origin?: string }>;
      };
      expect(listed.data).toEqual([
        expect.objectContaining({ decisionId: data.decisionId, origin: 'supervisor' }),
      ]);
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});

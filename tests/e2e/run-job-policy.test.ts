import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AGENT,
  RUN_TIMEOUT_MS,
  type RunPlatform,
  START_TIMEOUT_MS,
  startRunPlatform,
} from './run-support.js';

// `flowloom run --policy FILE`: the job runs under a policy of its own, next to the organisation's.
// The active policy here never stops a loop; the job policy does, on a real child process.

const ADMIN_KEY = 'flk_e2e-run-job-policy-admin-0123456789abc';

const ACTIVE = `
name: org-baseline
rules:
  - id: huge-prompts
    condition: request.estimated_tokens > 100000
    action: block
`;

const JOB_POLICY = `name: job-loop-guard
rules:
  - id: same-question
    condition: signals.repeated_prompts >= 2
    action: stop_job
    message: this job may not ask the same question 3 times
`;

/** A CEL type error on line 4 and a reroute (not allowed in a job policy) on line 8. */
const BAD_JOB_POLICY = `name: job-bad
rules:
  - id: typo
    condition: request.max_tokens > "ten"
    action: block
  - id: elsewhere
    condition: "true"
    action: { type: reroute, model: other }
`;

let platform: RunPlatform;

beforeAll(async () => {
  platform = await startRunPlatform(ACTIVE, ADMIN_KEY);
}, START_TIMEOUT_MS + 10_000);

afterAll(async () => {
  await platform?.close();
}, 30_000);

describe('flowloom run --policy', () => {
  it(
    'when a looping job runs under a job policy that stops loops, then it is stopped although the active policy would not, and the timeline and decisions name the job policy',
    async () => {
      const file = join(platform.dir, 'job-loop-guard.yaml');
      writeFileSync(file, JOB_POLICY);
      const { code, stdout, stderr } = await platform.run([
        '--name',
        'guarded',
        '--policy',
        file,
        '--grace-seconds',
        '1',
        '--',
        process.execPath,
        AGENT,
      ]);
      const output = `${stdout}\n${stderr}`;
      expect(code, output).toBe(3);
      const job = /job (guarded-[0-9a-f]{6}): /.exec(stderr)?.[1];
      expect(job, output).toBeDefined();

      // Pushed and recorded like every version (author, message), but not deployed.
      const policy = (await platform.api('/api/v1/policies/job-loop-guard')) as {
        deployment: unknown;
        versions: Array<{ version: string; author: string; message: string }>;
      };
      expect(policy.deployment ?? null).toBeNull();
      const version = policy.versions[0]!;
      expect(version.message).toContain(`job policy of flowloom run ${job}`);
      expect(version.author).toBeTruthy();
      const active = (await platform.api('/api/v1/gateway/policy')) as { policies: Array<{ name: string }> };
      expect(active.policies.map((p) => p.name)).toEqual(['org-baseline']);
      expect(stderr).toContain(`job policy "job-loop-guard" version ${version.version.slice(0, 12)} pushed`);

      // The timeline: the key bound to it, the stop by the job policy with its reason, then the signals.
      const timeline = stderr.slice(stderr.indexOf('Timeline of job'));
      expect(timeline).toContain(`under job policy "job-loop-guard" version ${version.version.slice(0, 12)}`);
      expect(timeline).toMatch(
        new RegExp(
          `stopped +stop_job: job policy "job-loop-guard" version ${version.version.slice(0, 12)} \\(enforce\\), rule "same-question"`,
        ),
      );
      expect(timeline).toContain('this job may not ask the same question 3 times');
      const order = ['stop_job:', 'SIGTERM to pid', 'SIGKILL to pid', 'job key revoked'];
      const positions = order.map((text) => timeline.indexOf(text));
      expect(
        positions.every((p) => p >= 0),
        timeline,
      ).toBe(true);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);

      // The gateway: stopped by the job policy's decision; the key was bound to its version.
      const status = (await platform.api(`/api/v1/jobs/${job}`)) as Record<string, unknown>;
      expect(status).toMatchObject({
        status: 'stopped',
        stoppedBy: { policy: 'job-loop-guard', version: version.version, rule: 'same-question' },
      });
      const key = await platform.jobKey(job!);
      expect(key?.policy).toBe(version.version);
      expect(key?.revokedAt).toBeTruthy();
      const stoppedBy = (status.stoppedBy as { decisionId: string }).decisionId;
      const decision = (await platform.api(`/api/v1/decisions/${stoppedBy}`)) as {
        verdict: string;
        evaluations: Array<{ policy: string; version: string; jobPolicy?: boolean; matched: string[] }>;
      };
      expect(decision.verdict).toBe('stop_job');
      expect(decision.evaluations).toEqual([
        expect.objectContaining({ policy: 'org-baseline', matched: [] }),
        expect.objectContaining({
          policy: 'job-loop-guard',
          version: version.version,
          jobPolicy: true,
          matched: ['same-question'],
        }),
      ]);
      const interventions = (await platform.api(`/api/v1/jobs/${job}/interventions`)) as {
        data: Array<{ action: string; policy: string; jobPolicy?: boolean }>;
      };
      expect(interventions.data).toContainEqual(
        expect.objectContaining({ action: 'stop_job', policy: 'job-loop-guard', jobPolicy: true }),
      );
    },
    RUN_TIMEOUT_MS + 10_000,
  );

  it(
    'when the job policy file is invalid, then it is refused with pointed messages before the job starts, and nothing is pushed',
    async () => {
      const file = join(platform.dir, 'job-bad.yaml');
      writeFileSync(file, BAD_JOB_POLICY);
      const { code, stdout, stderr } = await platform.run([
        '--name',
        'refused',
        '--policy',
        file,
        '--',
        process.execPath,
        AGENT,
      ]);
      expect(code, `${stdout}\n${stderr}`).toBe(2);
      expect(stderr).toContain('the job was not started');
      expect(stderr).toMatch(/job-bad\.yaml:4:\d+: rules\[0\]\.condition/);
      expect(stderr).toMatch(/job-bad\.yaml:8:\d+: rules\[1\]\.action: action "reroute" is not allowed here/);
      expect(stdout).not.toContain('agent:');
      expect(stderr).not.toContain('Timeline');
      const { data } = (await platform.api('/api/v1/keys?includeRevoked=true')) as {
        data: Array<{ name: string }>;
      };
      expect(data.some((k) => k.name.startsWith('flowloom run refused-'))).toBe(false);
      const policies = (await platform.api('/api/v1/policies')) as { data: Array<{ name: string }> };
      expect(policies.data.some((p) => p.name === 'job-bad')).toBe(false);
    },
    RUN_TIMEOUT_MS + 10_000,
  );

  it(
    'when --policy names a version nobody pushed, then the key is refused and the job does not start',
    async () => {
      const { code, stdout, stderr } = await platform.run([
        '--policy',
        'abcdef0123456',
        '--',
        process.execPath,
        AGENT,
      ]);
      expect(code, `${stdout}\n${stderr}`).toBe(2);
      expect(stderr).toContain('No policy has a version abcdef0123456');
      expect(stdout).not.toContain('agent:');
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});

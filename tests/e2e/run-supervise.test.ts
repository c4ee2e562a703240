import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `flowloom run` as a user runs it: the CLI in its own process against a running gateway (admin key
// in FLOWLOOM_API_KEY), supervising a real child that uses the official OpenAI SDK with nothing but
// the environment it was given.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'services/flowloom/bin/flowloom.js');
const AGENT = fileURLToPath(new URL('./fixtures/looping-agent.mjs', import.meta.url));
const RUN_TIMEOUT_MS = 120_000;

const POLICY = `
name: loop-guard
rules:
  - id: same-question
    description: the same prompt keeps coming back
    condition: signals.repeated_prompts >= 2
    action: stop_job
    message: the job asked the same question 3 times
`;

let t: TestGateway;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-run-e2e-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, POLICY);
  t = await startTestGateway({ overrides: { policy: { file, mode: 'enforce', percent: 10 } } });
});

afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(FLOWLOOM_|OPENAI_|ANTHROPIC_|GEMINI_|GOOGLE_|AZURE_OPENAI_)/.test(name)) continue;
    if (name === 'NODE_OPTIONS' || name.startsWith('VITEST')) continue;
    env[name] = value;
  }
  return { ...env, NO_COLOR: '1', CI: '1', FLOWLOOM_URL: t.url, FLOWLOOM_API_KEY: t.adminKey, ...extra };
}

function flowloomRun(args: string[], extra: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'run', ...args], {
      cwd: ROOT,
      env: cleanEnv(extra),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`flowloom run did not finish in time:\n${stdout}\n${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface KeyView {
  id: string;
  name: string;
  revokedAt: string | null;
}

async function jobKey(job: string): Promise<KeyView | undefined> {
  const res = await t.get('/api/v1/keys?includeRevoked=true', t.adminKey);
  return (res.body as { data: KeyView[] }).data.find((k) => k.name === `flowloom run ${job}`);
}

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

      // The timeline: the stop with its policy, version, mode, rule and reason, then the signals.
      const version = (t.gateway.policy.status().policies[0]?.stable ?? '').slice(0, 12);
      expect(version).toMatch(/^[0-9a-f]{12}$/);
      expect(stderr).toContain(`Timeline of job ${job}`);
      expect(stderr).toMatch(
        new RegExp(
          `stopped +stop_job: policy "loop-guard" version ${version} \\(enforce\\), rule "same-question"`,
        ),
      );
      expect(stderr).toContain('why       the job asked the same question 3 times');
      // The values: the decision's own where the platform serves it, else the job's signals just after.
      expect(stderr).toMatch(/(values|seen) +.*requests_per_minute=\d+/);
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

      // The gateway saw the job: its requests were tagged, it is stopped by that decision, and the key is gone.
      const status = await t.get(`/api/v1/jobs/${job}`, t.adminKey);
      expect(status.body).toMatchObject({
        status: 'stopped',
        stoppedBy: { policy: 'loop-guard', rule: 'same-question' },
      });
      const completed = (await t.events()).filter(
        (e) => e.type === 'dev.flowloom.gateway.request.completed.v1' && e.subject === `job/${job}`,
      );
      expect(completed.length).toBeGreaterThanOrEqual(2);
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
    'when --policy names a policy that is not in force, then nothing starts and the message lists what is',
    async () => {
      const { code, stderr } = await flowloomRun([
        '--policy',
        'no-such-policy',
        '--',
        process.execPath,
        AGENT,
      ]);
      expect(code).toBe(2);
      expect(stderr).toContain('policy "no-such-policy" is not in force');
      expect(stderr).toContain('loop-guard (');
      expect(stderr).not.toContain('Timeline');
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});

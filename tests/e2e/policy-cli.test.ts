import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@flowloom/gateway/testing/ports';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanEnv,
  runCli as cli,
  loopGuardPolicy,
  loopJob,
  personalAdminEnv,
  type Running,
  startUp,
  stopUp,
  waitForOutput,
} from './cli-support.js';
import { openScratchSchema, type ScratchSchema } from './pg-schema.js';

// `flowloom policy` as an operator runs it against `flowloom up` (here on the test PostgreSQL):
// validate and push, shadow, an enforce promotion that the author cannot approve and a reviewer
// does, the loop stopped, replay, rollback.

const ADMIN = 'flk_e2e-cli-admin-0123456789abcdefghijklm';

const GUARD = loopGuardPolicy('runaway-guard');
const BROKEN = `name: runaway-guard
rules:
  - id: agent-loop
    condition: signals.repeated_prompts >= 3
    action: stop_jobb
`;

let pg: ScratchSchema | undefined;
let dir: string;
let up: Running | undefined;
let base: string;
let env: NodeJS.ProcessEnv;
let reviewerEnv: NodeJS.ProcessEnv;
let rootEnv: NodeJS.ProcessEnv;
let memberKey: string;

beforeAll(async () => {
  pg = await openScratchSchema('e2e_cli');
  const url = pg.url;
  dir = mkdtempSync(join(tmpdir(), 'flowloom-e2e-cli-'));
  writeFileSync(join(dir, 'guard.yaml'), GUARD);
  writeFileSync(join(dir, 'broken.yaml'), BROKEN);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const upEnv = cleanEnv({
    FLOWLOOM_HTTP_PORT: String(port),
    FLOWLOOM_GRPC_PORT: String(await freePort()),
    FLOWLOOM_DATA_DIR: dir,
    FLOWLOOM_DATABASE_URL: url,
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'warn',
  });
  up = startUp(upEnv);
  await waitForOutput(up, /FlowLoom is up/, 90_000);
  // The bootstrap key hands out personal admin keys: alice (the author) and a reviewer.
  rootEnv = cleanEnv({ FLOWLOOM_URL: base, FLOWLOOM_API_KEY: ADMIN });
  env = await personalAdminEnv(base, rootEnv, 'alice');
  reviewerEnv = await personalAdminEnv(base, rootEnv, 'reviewer');
  const member = await fetch(`${base}/api/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'agent' }),
  });
  memberKey = ((await member.json()) as { key: string }).key;
});

afterAll(async () => {
  if (up && up.child.exitCode === null) await stopUp(up);
  await pg?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const loop = (job: string, times: number) => loopJob(base, memberKey, job, times);

describe('flowloom policy against flowloom up', () => {
  let version: string;

  it('when a policy file is invalid, then validate and push point at the line and nothing is stored', async () => {
    const validated = await cli(['policy', 'validate', join(dir, 'broken.yaml')], env);
    expect(validated.code).toBe(1);
    expect(validated.stderr).toMatch(/broken\.yaml:5:\d+: rules\[0\]\.action: .*stop_jobb/);
    const missing = await cli(['policy', 'validate', join(dir, 'absent.yaml')], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no such file');
    expect(missing.stderr).not.toContain('Usage:');
    const pushed = await cli(['policy', 'push', join(dir, 'broken.yaml')], env);
    expect(pushed.code).toBe(1);
    expect(pushed.stderr).toMatch(/broken\.yaml:5:\d+/);
    expect((await cli(['policy', 'list'], env)).stdout).toContain('No policies');
  });

  it('when a valid policy is pushed and put in shadow, then a loop is flagged but nothing is refused', async () => {
    expect((await cli(['policy', 'validate', join(dir, 'guard.yaml')], env)).code).toBe(0);
    const asRoot = await cli(['policy', 'push', join(dir, 'guard.yaml')], rootEnv);
    expect(asRoot.code).toBe(1);
    expect(asRoot.stderr).toContain('bootstrap admin key');
    expect(asRoot.stderr).toContain('flowloom keys create --name NAME --owner you@example.com --admin');
    const pushed = await cli(['policy', 'push', join(dir, 'guard.yaml'), '-m', 'first guard', '--json'], env);
    expect(pushed.code, pushed.stderr).toBe(0);
    version = (JSON.parse(pushed.stdout) as { version: string }).version;
    const shadow = await cli(
      ['policy', 'promote', 'runaway-guard', version.slice(0, 10), '--mode', 'shadow'],
      env,
    );
    expect(shadow.stdout).toContain(`shadow ${version.slice(0, 12)}`);

    const results = await loop('shadow-job', 6);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    await new Promise((r) => setTimeout(r, 500)); // decisions travel as events
    const explained = await cli(['policy', 'decision', results[5]!.decision!], env);
    expect(explained.code, explained.stderr).toBe(0);
    expect(explained.stdout).toMatch(/allow \(would stop_job; not enforced\) by rule agent-loop/);
    expect(explained.stdout).toMatch(/matched agent-loop -> stop_job: signals\.repeated_prompts=5/);
  });

  it('when enforce is requested, then the author cannot approve it, a reviewer can, and the next loop is stopped', async () => {
    const requested = await cli(['policy', 'promote', 'runaway-guard', version, '--mode', 'enforce'], env);
    const id = /approve (\S+)/.exec(requested.stdout)?.[1];
    expect(id, requested.stdout).toBeTruthy();
    const self = await cli(['policy', 'approve', id!], env);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain('cannot approve');
    // The bypass: alice makes herself an admin key under another owner; it descends from hers.
    const sockEnv = await personalAdminEnv(base, env, 'mallory');
    const bypass = await cli(['policy', 'approve', id!], sockEnv);
    expect(bypass.code).toBe(1);
    expect(bypass.stderr).toContain("descends from the author's key");
    const approved = await cli(['policy', 'approve', id!], reviewerEnv);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain('approved by reviewer');

    const results = await loop('enforced-job', 8);
    const stopped = results.findIndex((r) => r.status === 403) + 1;
    expect(stopped).toBeGreaterThanOrEqual(4); // the 4th identical prompt has 3 repeats before it
    expect(stopped - 4).toBeLessThanOrEqual(3);
    expect(results.at(-1)?.text).toContain('rule \\"agent-loop\\"');
  });

  it('when a job policy is pushed with --job-policy, then even the bootstrap key may push it, it is not deployed, and a reroute in it is refused', async () => {
    writeFileSync(
      join(dir, 'job.yaml'),
      'name: nightly-job\nrules:\n  - id: stop-loops\n    condition: signals.repeated_prompts >= 2\n    action: stop_job\n',
    );
    const pushed = await cli(['policy', 'push', join(dir, 'job.yaml'), '--job-policy'], rootEnv);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout).toMatch(/pushed nightly-job version [0-9a-f]{64}/);
    expect(pushed.stdout).toMatch(/run a job under it: flowloom run --policy [0-9a-f]{12} -- CMD ARGS/);
    const shown = await cli(['policy', 'show', 'nightly-job', '--json'], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: 'nightly-job', deployment: null });

    writeFileSync(
      join(dir, 'job-reroute.yaml'),
      'name: nightly-job\nrules:\n  - id: elsewhere\n    condition: request.model == "big"\n    action: { type: reroute, model: small }\n',
    );
    const refused = await cli(['policy', 'push', join(dir, 'job-reroute.yaml'), '--job-policy'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('reroute');
    expect((await cli(['policy', 'push', '--help'], env)).stdout).toContain('--job-policy');
  });

  it('when a stricter version is replayed, diffed and then rolled back, then each command says what happens', async () => {
    writeFileSync(join(dir, 'stricter.yaml'), GUARD.replace('>= 3', '>= 2'));
    const diff = await cli(['policy', 'diff', join(dir, 'stricter.yaml')], env);
    expect(diff.stdout).toContain('agent-loop');
    const pushed = await cli(['policy', 'push', join(dir, 'stricter.yaml'), '--json'], env);
    expect(pushed.code, pushed.stderr).toBe(0);
    const stricter = (JSON.parse(pushed.stdout) as { version: string }).version;
    const replay = await cli(
      ['policy', 'replay', 'runaway-guard', '--version', stricter, '--since', '1h'],
      env,
    );
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/replayed \d+ decisions: [1-9]\d* would change/);
    expect(replay.stdout).toContain('allow -> stop_job');
    // The recorded decisions hold the signals the stricter version reads: nothing to warn about.
    expect(replay.stdout).not.toContain('incomplete');
    // As the issue writes it: the version alone, its policy found from it.
    const byVersion = await cli(
      ['policy', 'replay', '--version', stricter.slice(0, 10), '--since', '1h'],
      env,
    );
    expect(byVersion.code, byVersion.stderr).toBe(0);
    expect(byVersion.stdout).toContain(
      `runaway-guard: ${stricter.slice(0, 12)} against ${version.slice(0, 12)}`,
    );
    expect(byVersion.stdout).toMatch(/replayed \d+ decisions: [1-9]\d* would change/);
    expect((await cli(['policy', 'replay', '--help'], env)).stdout).toContain(
      'flowloom policy replay [NAME] --version VERSION',
    );

    const bypass = await cli(['policy', 'rollback', 'runaway-guard', '--to', stricter.slice(0, 12)], env);
    expect(bypass.code).toBe(1);
    expect(bypass.stderr).toContain(
      `Version ${stricter.slice(0, 12)} of policy "runaway-guard" was never enforced`,
    );
    expect(bypass.stderr).toContain('--mode enforce');

    const rolledBack = await cli(['policy', 'rollback', 'runaway-guard'], env);
    expect(rolledBack.stdout).toContain(`shadow ${version.slice(0, 12)}`);
    const shown = await cli(['policy', 'show', 'runaway-guard'], env);
    expect(shown.stdout).toMatch(/#2 [0-9a-f]{12}/);
    expect(shown.stdout).toContain('approved by reviewer');
    expect((await cli(['policy', 'push', '--help'], env)).stdout).toContain('flowloom policy push FILE');
    // Nine CLI processes in a row: one start each, slow on a loaded machine.
  }, 60_000);
});

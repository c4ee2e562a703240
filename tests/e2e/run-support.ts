import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './helpers.js';

// `flowloom run` as a user runs it: the platform started with `flowloom up` (gateway and policy
// service, a policy file enforced), then the CLI in its own process with an admin key in
// FLOWLOOM_API_KEY, supervising a real child that uses the official OpenAI SDK with nothing but the
// environment it was given.

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'services/flowloom/bin/flowloom.js');
export const AGENT = fileURLToPath(new URL('./fixtures/looping-agent.mjs', import.meta.url));
export const START_TIMEOUT_MS = 120_000;
export const RUN_TIMEOUT_MS = 120_000;

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(FLOWLOOM_|OPENAI_|ANTHROPIC_|GEMINI_|GOOGLE_|AZURE_OPENAI_)/.test(name)) continue;
    if (name === 'NODE_OPTIONS' || name.startsWith('VITEST')) continue;
    env[name] = value;
  }
  return { ...env, NO_COLOR: '1', CI: '1', ...extra };
}

export interface KeyView {
  id: string;
  name: string;
  revokedAt: string | null;
  policy?: string | null;
}

export interface RunPlatform {
  url: string;
  /** A folder of the test's own, removed at close. */
  dir: string;
  api(path: string): Promise<unknown>;
  /** `flowloom run ARGS` in a process of its own, with the platform's URL and admin key. */
  run(
    args: string[],
    extra?: Record<string, string>,
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** The key `flowloom run` issued for a job, revoked or not. */
  jobKey(job: string): Promise<KeyView | undefined>;
  close(): Promise<void>;
}

/** `flowloom up` in a process of its own, enforcing `policy`, with `adminKey` as its bootstrap key. */
export async function startRunPlatform(policy: string, adminKey: string): Promise<RunPlatform> {
  const dir = mkdtempSync(join(tmpdir(), 'flowloom-run-e2e-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, policy);
  const port = await freePort();
  const platform: ChildProcess = spawn(process.execPath, [BIN, 'up'], {
    cwd: dir,
    env: cleanEnv({
      FLOWLOOM_DATA_DIR: join(dir, 'data'),
      FLOWLOOM_HTTP_PORT: String(port),
      FLOWLOOM_GRPC_PORT: '0',
      FLOWLOOM_ADMIN_KEY: adminKey,
      FLOWLOOM_POLICY_FILE: file,
      FLOWLOOM_POLICY_MODE: 'enforce',
      FLOWLOOM_LOG_LEVEL: 'warn',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (c: Buffer): void => {
    output += c.toString();
  };
  platform.stdout?.on('data', collect);
  platform.stderr?.on('data', collect);
  const close = async (): Promise<void> => {
    if (platform.exitCode === null) {
      const exited = new Promise((resolve) => platform.once('exit', resolve));
      platform.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      if (platform.exitCode === null) platform.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let url: string;
  const until = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const match = /FlowLoom is up: HTTP (\S+)/.exec(output);
    if (match?.[1]) {
      url = match[1];
      break;
    }
    if (platform.exitCode !== null || Date.now() > until) {
      await close();
      throw new Error(`flowloom up did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const api = async (path: string): Promise<unknown> => {
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${adminKey}` } });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };

  const run: RunPlatform['run'] = (args, extra = {}) =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'run', ...args], {
        cwd: ROOT,
        env: cleanEnv({ FLOWLOOM_URL: url, FLOWLOOM_API_KEY: adminKey, ...extra }),
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

  const jobKey = async (job: string): Promise<KeyView | undefined> => {
    const { data } = (await api('/api/v1/keys?includeRevoked=true')) as { data: KeyView[] };
    return data.find((k) => k.name === `flowloom run ${job}`);
  };

  return { url, dir, api, run, jobKey, close };
}

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@flowloom/gateway/testing/ports';

// Running the flowloom CLI as a user does: a child process from the repository root, in the user's
// environment without the variables that would change what FlowLoom does.

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'services/flowloom/bin/flowloom.js');

/** The user's environment minus anything that would change what FlowLoom does. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(FLOWLOOM_|OPENAI_|ANTHROPIC_|GEMINI_|GOOGLE_|AZURE_OPENAI_)/.test(name)) continue;
    if (name === 'NODE_OPTIONS' || name.startsWith('VITEST')) continue;
    env[name] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** A key as `flowloom up` and `flowloom keys create` print it: alone on an indented line. */
export const PRINTED_KEY = /^\s+(flk_[A-Za-z0-9_-]{20,})\s*$/m;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `flowloom ...args` to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CliResult> {
  return runProcess(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env,
    timeoutMs,
    label: `flowloom ${args.join(' ')}`,
  });
}

/**
 * The CLI environment of a person's own admin key, created with `creatorEnv`'s key (the bootstrap key
 * hands out personal admin keys: policies are pushed with one and approved with another's).
 */
export async function personalAdminEnv(
  base: string,
  creatorEnv: NodeJS.ProcessEnv,
  owner: string,
): Promise<NodeJS.ProcessEnv> {
  const created = await runCli(
    ['keys', 'create', '--name', owner, '--owner', owner, '--admin', '--json'],
    creatorEnv,
  );
  if (created.code !== 0) throw new Error(`flowloom keys create for ${owner} failed: ${created.stderr}`);
  return cleanEnv({
    FLOWLOOM_URL: base,
    FLOWLOOM_API_KEY: (JSON.parse(created.stdout) as { key: string }).key,
  });
}

/** Runs a command to completion; after `timeoutMs` it is killed and the error names it by `label`. */
export function runProcess(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; label?: string },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const printed = capture(child);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const label = options.label ?? [command, ...args].join(' ');
      reject(
        new Error(
          `${label} did not finish in ${options.timeoutMs} ms:\n${printed.stdout}\n${printed.stderr}`,
        ),
      );
    }, options.timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, ...printed });
    });
  });
}

/** What a child prints on stdout and stderr so far; the fields grow as it prints. */
export function capture(child: ChildProcess): { stdout: string; stderr: string } {
  const printed = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => {
    printed.stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    printed.stderr += chunk.toString('utf8');
  });
  return printed;
}

export interface Running {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startUp(env: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, [BIN, 'up'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, output: () => out, exited };
}

export async function waitForOutput(
  running: Running,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  const until = Date.now() + timeoutMs;
  let exited = false;
  void running.exited.then(() => {
    exited = true;
  });
  for (;;) {
    const match = running.output().match(pattern);
    if (match) return match;
    if (exited) throw new Error(`flowloom up exited before printing ${pattern}:\n${running.output()}`);
    if (Date.now() > until)
      throw new Error(`flowloom up did not print ${pattern} in time:\n${running.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function stopUp(running: Running, timeoutMs = 20_000): Promise<number | null> {
  running.child.kill('SIGTERM');
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`flowloom up still running ${timeoutMs} ms after SIGTERM`)), timeoutMs),
  );
  return (await Promise.race([running.exited, timeout])).code;
}

/** Kills a `flowloom up` that a failed test left running, and waits for it to exit. */
export async function killUp(running: Running | undefined): Promise<void> {
  if (!running || running.child.exitCode !== null || running.child.signalCode !== null) return;
  running.child.kill('SIGKILL');
  await running.exited;
}

/** Polls until `check` returns a value, or fails with the last reason. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface LoopAnswer {
  status: number;
  /** The decision id the gateway answered with (x-flowloom-decision). */
  decision: string | null;
  text: string;
}

/**
 * A looping agent: sends the same prompt as job `job` through the gateway at `base` until it is
 * refused (403) or `times` were sent.
 */
export async function loopJob(
  base: string,
  key: string,
  job: string,
  times: number,
  prompt = 'Is the deployment finished? Check again and report back.',
): Promise<LoopAnswer[]> {
  const out: LoopAnswer[] = [];
  for (let i = 0; i < times; i++) {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-flowloom-job': job },
      body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: prompt }] }),
    });
    out.push({
      status: res.status,
      decision: res.headers.get('x-flowloom-decision'),
      text: await res.text(),
    });
    if (res.status === 403) break;
  }
  return out;
}

/** A policy that stops a job sending the same prompt a 4th time (3 repeats before it). */
export function loopGuardPolicy(name: string): string {
  return `name: ${name}
rules:
  - id: agent-loop
    description: the same prompt over and over
    condition: signals.repeated_prompts >= 3
    action: stop_job
    message: the agent kept sending the same prompt
`;
}

/**
 * The environment of an embedded `flowloom up` (no servers) with its data in `dataDir`, on free
 * ports, the audit trail checkpointing every 300 ms; `base` is its HTTP address.
 */
export async function embeddedUpEnv(
  dataDir: string,
  adminKey: string,
  extra: Record<string, string> = {},
): Promise<{ env: NodeJS.ProcessEnv; base: string }> {
  const httpPort = await freePort();
  const env = cleanEnv({
    FLOWLOOM_HTTP_PORT: String(httpPort),
    FLOWLOOM_GRPC_PORT: String(await freePort()),
    FLOWLOOM_AUDIT_GRPC_PORT: String(await freePort()),
    FLOWLOOM_DATA_DIR: dataDir,
    FLOWLOOM_ADMIN_KEY: adminKey,
    FLOWLOOM_LOG_LEVEL: 'warn',
    FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '300',
    ...extra,
  });
  return { env, base: `http://127.0.0.1:${httpPort}` };
}

export interface EmbeddedPlatform {
  up: Running;
  /** Its HTTP address. */
  base: string;
  /** Its gRPC address (host:port). */
  grpcAddress: string;
  /**
   * The CLI's environment as alice, a personal admin key the bootstrap key created (policies cannot
   * be pushed with the bootstrap key: no one could approve them).
   */
  env: NodeJS.ProcessEnv;
  /** The CLI's environment as the bootstrap admin. */
  rootEnv: NodeJS.ProcessEnv;
  /** The CLI's environment as a second admin, who can approve the first one's promotions. */
  reviewerEnv: NodeJS.ProcessEnv;
  /** A member key named `memberName`, for the model APIs. */
  memberKey: string;
}

/**
 * An embedded `flowloom up` (see `embeddedUpEnv`) once it is up, with two personal admins (alice and
 * a reviewer) and a member key created with the bootstrap key through `flowloom keys create`.
 */
export async function startEmbeddedPlatform(
  dataDir: string,
  adminKey: string,
  memberName = 'agent',
): Promise<EmbeddedPlatform> {
  const upEnv = await embeddedUpEnv(dataDir, adminKey);
  const up = startUp(upEnv.env);
  await waitForOutput(up, /FlowLoom is up/, 90_000);
  const rootEnv = cleanEnv({ FLOWLOOM_URL: upEnv.base, FLOWLOOM_API_KEY: adminKey });
  const member = await runCli(['keys', 'create', '--name', memberName, '--json'], rootEnv);
  if (member.code !== 0) throw new Error(`flowloom keys create --name ${memberName}: ${member.stderr}`);
  return {
    up,
    base: upEnv.base,
    grpcAddress: `127.0.0.1:${upEnv.env.FLOWLOOM_GRPC_PORT}`,
    env: await personalAdminEnv(upEnv.base, rootEnv, 'alice'),
    rootEnv,
    reviewerEnv: await personalAdminEnv(upEnv.base, rootEnv, 'reviewer'),
    memberKey: (JSON.parse(member.stdout) as { key: string }).key,
  };
}

/** `flowloom ...args` run as `env`, which must succeed; its stdout. */
async function succeed(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const result = await runCli(args, env);
  if (result.code !== 0)
    throw new Error(`flowloom ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** `flowloom policy push FILE` then `promote NAME VERSION --mode shadow`; the version pushed. */
export async function pushInShadow(
  file: string,
  name: string,
  message: string,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const pushed = await succeed(['policy', 'push', file, '-m', message, '--json'], env);
  const { version } = JSON.parse(pushed) as { version: string };
  await succeed(['policy', 'promote', name, version, '--mode', 'shadow'], env);
  return version;
}

/** `flowloom policy promote ... --mode enforce` as `env`, approved as `reviewerEnv`; the promotion id. */
export async function enforceApproved(
  name: string,
  version: string,
  env: NodeJS.ProcessEnv,
  reviewerEnv: NodeJS.ProcessEnv,
): Promise<string> {
  const requested = await runCli(['policy', 'promote', name, version, '--mode', 'enforce'], env);
  const promotion = /approve (\S+)/.exec(requested.stdout)?.[1];
  if (!promotion) throw new Error(`no promotion to approve:\n${requested.stdout}\n${requested.stderr}`);
  await succeed(['policy', 'approve', promotion], reviewerEnv);
  return promotion;
}

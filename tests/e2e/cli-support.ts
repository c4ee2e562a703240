import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

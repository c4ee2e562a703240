import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '@flowloom/gateway/testing/ports';

export { freePort };

export interface Child {
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a process and waits until `ready` matches its output, or fails with the output so far. */
export async function startChild(
  command: string,
  args: string[],
  env: Record<string, string | undefined>,
  ready: RegExp,
  timeoutMs = 60_000,
): Promise<Child> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const started = Date.now();
  while (!ready.test(output)) {
    if (child.exitCode !== null) throw new Error(`${command} ${args.join(' ')} exited early:\n${output}`);
    if (Date.now() - started > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`${command} ${args.join(' ')} did not become ready in ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * CPU time a process has used, in µs: all its threads, and its main thread alone (Linux /proc; the
 * clock tick is 1/100 s there). Undefined where /proc is missing. CPU per request stays comparable
 * on a busy machine, where req/s mostly measures what the neighbours left over.
 */
export function cpuMicros(pid: number): { all: number; main: number } | undefined {
  const ticks = (path: string): number => {
    // Fields after the ")" that closes the command name: utime and stime are the 12th and 13th.
    const fields = readFileSync(path, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  };
  try {
    return { all: ticks(`/proc/${pid}/stat`), main: ticks(`/proc/${pid}/task/${pid}/stat`) };
  } catch {
    return undefined;
  }
}

/** The benchmark's mock OpenAI upstream (mock-upstream.ts) in a process of its own; `base` ends in /v1. */
export async function startMockUpstream(
  log: (line: string) => void,
): Promise<{ child: Child; base: string }> {
  const port = await freePort();
  log(`starting the mock OpenAI upstream on ${port}…`);
  const child = await startChild(
    'node',
    ['--import', 'tsx', fileURLToPath(new URL('./mock-upstream.ts', import.meta.url)), String(port)],
    {},
    /listening/,
  );
  return { child, base: `http://127.0.0.1:${port}/v1` };
}

/** A call to a FlowLoom admin API (`/api/v1/...`) with an admin key; fails on any non-2xx answer. */
export async function adminCall<T>(
  base: string,
  adminKey: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${adminKey}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

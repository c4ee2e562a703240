import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@flowloom/gateway/testing/ports';
import { afterEach, describe, expect, it } from 'vitest';

// `flowloom up` on a port that is taken: the real CLI in a process of its own, since what is checked
// is that the process ends by itself (nothing it opened keeps it alive) with a message that says what
// to do, and that the bootstrap admin key of a fresh data folder is not lost with the failed start.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'services/flowloom/bin/flowloom.js');
/** A fresh data folder takes seconds to set up on a busy machine: the failure may come late. */
const FAILS_WITHIN_MS = 90_000;
/** Once it has said it failed, the process has this long to end by itself. */
const EXITS_WITHIN_MS = 20_000;

interface Up {
  child: ChildProcess;
  output(): string;
  /** The exit code, or undefined when it has not ended within `ms`. */
  exit(ms: number): Promise<number | undefined>;
  waitFor(pattern: RegExp, ms: number): Promise<void>;
}

const running: Up[] = [];
const blockers: Server[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const up of running.splice(0)) {
    if (up.child.exitCode === null && up.child.signalCode === null) {
      up.child.kill('SIGKILL');
      await up.exit(10_000);
    }
  }
  for (const blocker of blockers.splice(0)) await new Promise((r) => blocker.close(r));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function startUp(args: string[], config?: string): Up {
  const env: Record<string, string | undefined> = { ...process.env, FLOWLOOM_LOG_LEVEL: 'warn' };
  // Only the flags (and `config`, a flowloom.yaml) choose the ports and folder; a key or config from
  // the environment would change what the first start prints.
  for (const name of Object.keys(env))
    if (name.startsWith('FLOWLOOM_') && name !== 'FLOWLOOM_LOG_LEVEL') delete env[name];
  if (config !== undefined) env.FLOWLOOM_CONFIG = config;
  const child = spawn(process.execPath, [CLI, 'up', ...args], { cwd: ROOT, env, stdio: 'pipe' });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const ended = new Promise<number>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 0))),
  );
  const up: Up = {
    child,
    output: () => text,
    exit: (ms) =>
      Promise.race([ended, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms))]),
    async waitFor(pattern, ms) {
      const deadline = Date.now() + ms;
      while (!pattern.test(text)) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no ${pattern} within ${ms} ms; flowloom up said:\n${text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  running.push(up);
  return up;
}

/** A listener on a port of its own, as another program holding the port would be. */
async function takePort(): Promise<number> {
  const server = createServer();
  blockers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the listener has no TCP port');
  return address.port;
}

/** Fails on a taken port: the message, then the process ends by itself with a non-zero code. */
async function failedStart(
  args: string[],
  config?: string,
): Promise<{ code: number | undefined; output: string }> {
  const up = startUp(args, config);
  await up.waitFor(/^flowloom up: .+$/m, FAILS_WITHIN_MS);
  const code = await up.exit(EXITS_WITHIN_MS);
  return { code, output: up.output() };
}

/** The next start on free ports: up, showing the admin key, which then works. */
async function showsWorkingAdminKey(http: number, grpc: number, dir: string): Promise<void> {
  const up = startUp(['--port', String(http), '--grpc-port', String(grpc), '--data-dir', dir]);
  await up.waitFor(/FlowLoom is up/, FAILS_WITHIN_MS);
  expect(up.output()).toMatch(/A bootstrap admin key was generated/);
  const key = /^\s+(flk_\S+)$/m.exec(up.output())?.[1];
  expect(key).toBeDefined();
  const keys = await fetch(`http://127.0.0.1:${http}/api/v1/keys`, {
    headers: { authorization: `Bearer ${key}` },
  });
  expect(keys.status).toBe(200);
  up.child.kill('SIGTERM');
  expect(await up.exit(EXITS_WITHIN_MS)).toBe(0);
}

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowloom-up-port-taken-'));
  dirs.push(dir);
  return join(dir, 'data');
}

describe('flowloom up: a port that is taken', () => {
  it.each([
    { name: 'HTTP', takes: 'http', flag: '--port', variable: 'FLOWLOOM_HTTP_PORT' },
    { name: 'gRPC', takes: 'grpc', flag: '--grpc-port', variable: 'FLOWLOOM_GRPC_PORT' },
  ])(
    'when the $name port is taken, then it exits non-zero naming the port and $flag, shows no admin key, and the next start shows one that works',
    async ({ name, takes, flag, variable }) => {
      const dir = dataDir();
      const http = takes === 'http' ? await takePort() : await freePort();
      const grpc = takes === 'grpc' ? await takePort() : await freePort();
      const failed = await failedStart([
        '--port',
        String(http),
        '--grpc-port',
        String(grpc),
        '--data-dir',
        dir,
      ]);
      expect(
        failed.code,
        `still running ${EXITS_WITHIN_MS} ms after it failed:\n${failed.output}`,
      ).toBeDefined();
      expect(failed.code).not.toBe(0);
      const taken = takes === 'http' ? http : grpc;
      expect(failed.output).toMatch(
        new RegExp(
          `flowloom up: .*${name} port ${taken} on 127\\.0\\.0\\.1 is already in use.*${flag} N.*${variable}`,
        ),
      );
      expect(failed.output).not.toMatch(/flk_|admin key was generated/);

      await new Promise((r) => blockers.pop()?.close(r));
      await showsWorkingAdminKey(http, grpc, dir);
    },
    240_000,
  );

  it('when the policy gRPC port of flowloom.yaml is taken, then it exits non-zero naming the port and policy.grpcPort', async () => {
    const dir = dataDir();
    const policyGrpc = await takePort();
    const config = join(dir, '..', 'flowloom.yaml');
    writeFileSync(config, `policy:\n  grpcPort: ${policyGrpc}\n`);
    const args = [
      '--port',
      String(await freePort()),
      '--grpc-port',
      String(await freePort()),
      '--data-dir',
      dir,
    ];
    const failed = await failedStart(args, config);
    expect(
      failed.code,
      `still running ${EXITS_WITHIN_MS} ms after it failed:\n${failed.output}`,
    ).toBeDefined();
    expect(failed.code).not.toBe(0);
    expect(failed.output).toMatch(
      new RegExp(`policy gRPC port ${policyGrpc} .*already in use.*policy\\.grpcPort`),
    );
  }, 240_000);
});

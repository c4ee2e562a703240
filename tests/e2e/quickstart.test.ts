import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@flowloom/gateway/testing/ports';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanEnv,
  killUp,
  PRINTED_KEY,
  type Running,
  runCli,
  startUp,
  stopUp,
  waitForOutput,
} from './cli-support.js';

// The README quickstart, as a user runs it: `flowloom up` from the repository root, an admin key read
// from its output, a key made with `flowloom keys create`, and the official SDK on `flowloom-local`.
// (tests/docs/readme-quickstart.test.ts runs the README's own snippets.)

const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;
const CLI_TIMEOUT_MS = 30_000;

const cli = (args: string[], env: NodeJS.ProcessEnv) => runCli(args, env, CLI_TIMEOUT_MS);

let dataDir: string;
let httpPort: number;
let grpcPort: number;
let env: NodeJS.ProcessEnv;
let running: Running | undefined;
let adminKey: string;
let demoKey: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'flowloom-quickstart-'));
  httpPort = await freePort();
  grpcPort = await freePort();
  env = cleanEnv({
    FLOWLOOM_HTTP_PORT: String(httpPort),
    FLOWLOOM_GRPC_PORT: String(grpcPort),
    FLOWLOOM_DATA_DIR: dataDir,
  });
});

afterAll(async () => {
  await killUp(running);
  rmSync(dataDir, { recursive: true, force: true });
});

const url = (): string => `http://127.0.0.1:${httpPort}`;

describe('the README quickstart', () => {
  it(
    'when flowloom up starts on a fresh data dir without FLOWLOOM_ADMIN_KEY, then it prints a generated admin key once and serves HTTP and gRPC',
    async () => {
      running = startUp(env);
      await waitForOutput(running, /FlowLoom is up/, START_TIMEOUT_MS);
      const printed = running.output();
      const match = printed.match(PRINTED_KEY);
      expect(match, printed).not.toBeNull();
      adminKey = match?.[1] ?? '';
      expect(printed.match(/flk_[A-Za-z0-9_-]{20,}/g)).toHaveLength(1);
      expect(printed).toContain(`HTTP http://127.0.0.1:${httpPort}`);
      expect(printed).toContain(`gRPC 127.0.0.1:${grpcPort}`);
      const health = await fetch(`${url()}/healthz`);
      expect(health.status).toBe(200);
    },
    START_TIMEOUT_MS + 5_000,
  );

  it('when keys create --name demo runs with FLOWLOOM_URL and the admin key, then it prints a new key once', async () => {
    const created = await cli(['keys', 'create', '--name', 'demo'], {
      ...env,
      FLOWLOOM_URL: url(),
      FLOWLOOM_API_KEY: adminKey,
    });
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('demo');
    const secret = created.stdout.match(PRINTED_KEY)?.[1];
    expect(secret, created.stdout).toBeTruthy();
    demoKey = secret ?? '';
    expect(demoKey).not.toBe(adminKey);
  }, 30_000);

  it('when the OpenAI SDK chats on flowloom-local with the new key, then it gets an answer, streamed and not', async () => {
    const client = new OpenAI({ baseURL: `${url()}/v1`, apiKey: demoKey, maxRetries: 0, timeout: 10_000 });
    const { data, response } = await client.chat.completions
      .create({ model: 'flowloom-local', messages: [{ role: 'user', content: 'Hello' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBeTruthy();
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-flowloom-deployment')).toBe('local/flowloom-local');

    const stream = await client.chat.completions.create({
      model: 'flowloom-local',
      messages: [{ role: 'user', content: 'Hello' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBeTruthy();
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  }, 20_000);

  it(
    'when SIGTERM is sent, then flowloom up exits 0 within a few seconds',
    async () => {
      if (!running) throw new Error('not running');
      // stopUp fails if it is still running STOP_TIMEOUT_MS after SIGTERM
      const code = await stopUp(running, STOP_TIMEOUT_MS);
      expect(code, running.output()).toBe(0);
      running = undefined;
    },
    STOP_TIMEOUT_MS + 5_000,
  );

  it(
    'when restarted on the same data dir, then no new admin key is printed and the existing keys still work',
    async () => {
      running = startUp(env);
      await waitForOutput(running, /FlowLoom is up/, START_TIMEOUT_MS);
      expect(running.output()).not.toMatch(/flk_/);

      const client = new OpenAI({ baseURL: `${url()}/v1`, apiKey: demoKey, maxRetries: 0, timeout: 10_000 });
      const completion = await client.chat.completions.create({
        model: 'flowloom-local',
        messages: [{ role: 'user', content: 'Hello again' }],
      });
      expect(completion.choices[0]?.message.content).toBeTruthy();

      const listed = await cli(['keys', 'list'], { ...env, FLOWLOOM_URL: url(), FLOWLOOM_API_KEY: adminKey });
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain('demo');
      expect(listed.stdout).not.toContain(demoKey);
    },
    START_TIMEOUT_MS + 20_000,
  );

  it(
    'when SIGTERM arrives during a stream, then the stream still finishes and flowloom up exits 0',
    async () => {
      const current = running;
      if (!current) throw new Error('not running');
      const client = new OpenAI({ baseURL: `${url()}/v1`, apiKey: demoKey, maxRetries: 0, timeout: 10_000 });
      const script = { reply: 'one two three four five six seven eight', chunks: 8, chunkDelayMs: 150 };
      const stream = await client.chat.completions.create({
        model: 'flowloom-local',
        messages: [{ role: 'user', content: `flowloom-local: ${JSON.stringify(script)}` }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let usage: OpenAI.CompletionUsage | null | undefined;
      let stopping: Promise<number | null> | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        usage = chunk.usage ?? usage;
        if (!stopping && text !== '') stopping = stopUp(current, STOP_TIMEOUT_MS);
      }
      expect(text).toBe(script.reply);
      expect(usage?.completion_tokens).toBeGreaterThan(0);
      if (!stopping) throw new Error('the stream sent no text');
      const code = await stopping;
      expect(code, current.output()).toBe(0);
      running = undefined;
    },
    STOP_TIMEOUT_MS + 10_000,
  );
});

describe.concurrent('the flowloom command line', () => {
  it('when --help is asked, then the usage is printed and it exits 0', async () => {
    const help = await cli(['--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: flowloom <command>/);
    expect(help.stdout).toContain('keys');
    expect(help.stdout).toContain('up');
  }, 30_000);

  it('when keys --help is asked, then the keys usage is printed and it exits 0', async () => {
    const help = await cli(['keys', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: flowloom keys/);
    expect(help.stdout).toContain('create');
  }, 30_000);

  it('when the command is unknown, then it exits 2 and says so on stderr', async () => {
    const unknown = await cli(['frobnicate'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command');
    expect(unknown.stderr).toContain('frobnicate');
  }, 30_000);

  it('when keys create runs without FLOWLOOM_API_KEY, then it fails with a message naming the variable', async () => {
    const result = await cli(['keys', 'create', '--name', 'x'], { ...env, FLOWLOOM_URL: url() });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('FLOWLOOM_API_KEY');
  }, 30_000);
});

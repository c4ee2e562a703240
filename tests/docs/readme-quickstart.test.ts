import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@flowloom/gateway/testing/ports';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliResult,
  capture,
  cleanEnv,
  killUp,
  PRINTED_KEY,
  ROOT,
  type Running,
  runProcess,
  startUp,
  waitForOutput,
} from '../e2e/cli-support.js';

// The README's Quickstart snippets, run as written against a `flowloom up` on a fresh data dir. Only
// what must differ in a test is replaced: port 8080 by a free port, `flk_...` by the keys the run
// printed, and the data dir. The shell lines run in one bash session from the repository root (a
// second terminal: exports carry over), the JS block as a file next to the repository's node_modules.

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const START_TIMEOUT_MS = 90_000;
const PLACEHOLDER = 'flk_...';

/** The text of `## title` up to the next `## ` heading; fails naming the heading when there is none. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  if (start === -1) throw new Error(`README.md has no "## ${title}" section`);
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end === -1 ? undefined : end);
}

/** The one fenced block of `lang` in the Quickstart that contains every one of `needles`. */
function quickstartBlock(lang: string, needles: string[]): string {
  const blocks = [...section('Quickstart').matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)]
    .filter(([, blockLang]) => blockLang === lang)
    .map(([, , body]) => body ?? '')
    .filter((body) => needles.every((needle) => body.includes(needle)));
  if (blocks.length !== 1)
    throw new Error(
      `README.md's Quickstart should have one \`\`\`${lang} block with ${needles.map((n) => JSON.stringify(n)).join(' and ')}; found ${blocks.length}`,
    );
  return blocks[0] ?? '';
}

/** What a user at this test's port would type: every :8080 is the test's port. */
const atPort = (text: string, port: number): string => text.replace(/:8080\b/g, `:${port}`);

interface Shell {
  /** Types lines into the terminal; resolves with what they printed once the last one is done. */
  type(lines: string): Promise<CliResult>;
  /** Ends the session (killing it if it is stuck); resolves with bash's exit code. */
  exit(): Promise<number | null>;
}

/**
 * One bash session from the repository root, as in a terminal, where a failing line ends the session
 * (set -e). The lines arrive on bash's stdin; each batch runs with stdin from /dev/null so that a
 * command reading stdin cannot swallow the lines after it.
 */
function bashSession(env: NodeJS.ProcessEnv, cwd = ROOT): Shell {
  const child = spawn('bash', ['-s'], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const input = child.stdin;
  const printed = capture(child);
  let ended = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      ended = true;
      resolve(code);
    }),
  );
  input.write('set -eu -o pipefail\n');
  let typed = 0;
  return {
    async type(lines) {
      const done = `__readme_lines_done_${++typed}__\n`;
      const from = { stdout: printed.stdout.length, stderr: printed.stderr.length };
      const since = (): CliResult => ({
        code: 0,
        stdout: printed.stdout.slice(from.stdout),
        stderr: printed.stderr.slice(from.stderr),
      });
      input.write(`{\n${lines}\n} </dev/null\necho ${done}`);
      const until = Date.now() + 60_000;
      while (!printed.stdout.endsWith(done)) {
        const { stdout, stderr } = since();
        if (ended) throw new Error(`bash stopped at a failing line of:\n${lines}\n${stdout}\n${stderr}`);
        if (Date.now() > until) {
          child.kill('SIGKILL');
          throw new Error(`these lines did not finish:\n${lines}\n${stdout}\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const result = since();
      return { ...result, stdout: result.stdout.slice(0, -done.length) };
    },
    exit() {
      input.end('exit\n');
      const stuck = setTimeout(() => child.kill('SIGKILL'), 10_000);
      return exited.finally(() => clearTimeout(stuck));
    },
  };
}

let dataDir: string;
let jsDir: string;
let port: number;
let running: Running | undefined;
let adminKey = '';
let userKey = '';

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'flowloom-readme-data-'));
  jsDir = mkdtempSync(join(tmpdir(), 'flowloom-readme-js-'));
  // `npm install openai` in the user's folder: here the repository's node_modules, where it resolves
  symlinkSync(join(ROOT, 'node_modules'), join(jsDir, 'node_modules'), 'dir');
  port = await freePort();
});

afterAll(async () => {
  await killUp(running);
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(jsDir, { recursive: true, force: true });
});

describe('the README Quickstart, run from its own snippets', () => {
  it(
    'when `npm start` (flowloom up) starts on a fresh data dir, then it prints the admin key the snippets need',
    async () => {
      const start = (
        JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
          scripts: Record<string, string>;
        }
      ).scripts.start;
      expect(start, 'README says `npm start` runs `flowloom up`').toBe('flowloom up');
      running = startUp(
        cleanEnv({
          FLOWLOOM_HTTP_PORT: String(port),
          FLOWLOOM_GRPC_PORT: String(await freePort()),
          FLOWLOOM_AUDIT_GRPC_PORT: String(await freePort()),
          FLOWLOOM_DATA_DIR: dataDir,
        }),
      );
      await waitForOutput(running, /FlowLoom is up/, START_TIMEOUT_MS);
      adminKey = running.output().match(PRINTED_KEY)?.[1] ?? '';
      expect(adminKey, running.output()).not.toBe('');
    },
    START_TIMEOUT_MS + 5_000,
  );

  it('when the sh block runs in a terminal, then keys create prints a key once and curl gets a chat.completion', async () => {
    const block = atPort(quickstartBlock('sh', ['npx flowloom keys create', 'curl ']), port);
    const lines = block.split('\n');
    const keysCreate = lines.findIndex((line) => line.includes('npx flowloom keys create'));
    // the user reads the new key off the screen before typing the lines after `keys create`
    const beforeKey = lines.slice(0, keysCreate + 1).join('\n');
    const afterKey = lines.slice(keysCreate + 1).join('\n');
    expect(beforeKey, 'the sh block sets FLOWLOOM_API_KEY=flk_... before keys create').toContain(PLACEHOLDER);

    const shell = bashSession(
      cleanEnv({
        // the CLI's default FLOWLOOM_URL is http://127.0.0.1:8080; a user on this port would say so
        FLOWLOOM_URL: `http://127.0.0.1:${port}`,
        // `npx flowloom` must be the repository's own, never a download
        npm_config_offline: 'true',
      }),
    );
    let called: CliResult;
    try {
      const created = await shell.type(beforeKey.replaceAll(PLACEHOLDER, adminKey));
      userKey = created.stdout.match(PRINTED_KEY)?.[1] ?? '';
      expect(userKey, `keys create printed no key:\n${created.stdout}\n${created.stderr}`).not.toBe('');
      expect(userKey).not.toBe(adminKey);
      expect(created.stdout.split(userKey)).toHaveLength(2); // shown once

      called = await shell.type(afterKey.replaceAll(PLACEHOLDER, userKey));
    } finally {
      await shell.exit();
    }
    let answer: unknown;
    try {
      answer = JSON.parse(called.stdout);
    } catch {
      throw new Error(`curl did not print JSON:\n${called.stdout}\n${called.stderr}`);
    }
    expect(answer).toMatchObject({
      object: 'chat.completion',
      choices: [{ message: { role: 'assistant', content: expect.stringMatching(/\S/) } }],
    });
  }, 60_000);

  it('when the js block is saved and run as the README says, then it prints the streamed answer', async () => {
    const how = section('Quickstart').match(/saved as `([\w.-]+\.mjs)` and run with\s+`([^`]+)`/);
    if (!how)
      throw new Error(
        'README.md\'s Quickstart no longer says "saved as `<file>.mjs` and run with `<command>`"',
      );
    const [, file = '', command = ''] = how;
    expect(userKey, 'the sh block test made the key').not.toBe('');
    writeFileSync(join(jsDir, file), atPort(quickstartBlock('js', ["from 'openai'"]), port));

    const run = await runProcess('bash', ['-c', command.replaceAll(PLACEHOLDER, userKey)], {
      cwd: jsDir,
      env: cleanEnv({}),
      timeoutMs: 20_000,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/\S/);
  }, 30_000);
  it('when the policy is saved and its sh block runs, then it goes to shadow and the sixth identical prompt would be blocked', async () => {
    const file = section('Quickstart').match(/Save this as `([\w.-]+\.yaml)`/)?.[1];
    if (!file) throw new Error('README.md\'s Quickstart no longer says "Save this as `<file>.yaml`"');
    expect(userKey, 'the sh block test made the key').not.toBe('');
    writeFileSync(join(jsDir, file), quickstartBlock('yaml', ['name:', 'rules:']));
    const lines = quickstartBlock('sh', ['policy push']).split('\n');
    const keysCreate = lines.findIndex((line) => line.includes('npx flowloom keys create'));
    const push = lines.findIndex((line) => line.includes('npx flowloom policy push'));
    expect(keysCreate, 'the policy block creates an admin key of your own before it pushes').toBeGreaterThan(
      -1,
    );
    expect(push).toBeGreaterThan(keysCreate);

    // In the folder where the user saved the file, with the bootstrap admin key still exported.
    const shell = bashSession(
      cleanEnv({
        FLOWLOOM_URL: `http://127.0.0.1:${port}`,
        FLOWLOOM_API_KEY: adminKey,
        npm_config_offline: 'true',
      }),
      jsDir,
    );
    let decided: CliResult;
    try {
      const created = await shell.type(lines.slice(0, keysCreate + 1).join('\n'));
      expect(created.stdout).toContain('valid policy');
      const ownKey = created.stdout.match(PRINTED_KEY)?.[1] ?? '';
      expect(ownKey, `keys create printed no key:\n${created.stdout}\n${created.stderr}`).not.toBe('');
      const pushed = await shell.type(
        lines
          .slice(keysCreate + 1, push + 1)
          .join('\n')
          .replaceAll(PLACEHOLDER, ownKey),
      );
      const version = pushed.stdout.match(/version ([0-9a-f]{12,})/)?.[1] ?? '';
      expect(version, `push printed no version:\n${pushed.stdout}\n${pushed.stderr}`).not.toBe('');
      const promoted = await shell.type(
        lines
          .slice(push + 1)
          .join('\n')
          .replaceAll('VERSION', version),
      );
      expect(promoted.stdout).toContain('shadow');

      // "Send the curl above six times"; the bundle reaches the gateway within a second.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      let decision = '';
      for (let i = 0; i < 6; i++) {
        const answer = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: 'Hello' }] }),
        });
        expect(answer.status).toBe(200);
        decision = answer.headers.get('x-flowloom-decision') ?? '';
      }
      expect(decision).not.toBe('');
      decided = await shell.type(`npx flowloom policy decision ${decision}`);
    } finally {
      await shell.exit();
    }
    expect(decided.stdout).toContain('would block');
  }, 90_000);
});

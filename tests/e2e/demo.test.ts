import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// `npm run demo` as a new user runs it, from the repository root, offline.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEMO_TIMEOUT_MS = 170_000;

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(FLOWLOOM_|OPENAI_|ANTHROPIC_|GEMINI_|GOOGLE_|AZURE_OPENAI_)/.test(name)) continue;
    if (name === 'NODE_OPTIONS' || name.startsWith('VITEST') || name.startsWith('npm_')) continue;
    env[name] = value;
  }
  // A provider key in the user's environment must not matter: the demo is offline.
  return { ...env, NO_COLOR: '1', OPENAI_API_KEY: 'sk-not-used', FLOWLOOM_URL: 'http://127.0.0.1:9' };
}

describe('npm run demo', () => {
  it(
    'when a new user runs the demo, then it exits 0 after showing the loop flagged in shadow, stopped when enforced, and the job recovering under a throttle, each with its reason',
    async () => {
      const started = Date.now();
      const { code, output } = await new Promise<{ code: number | null; output: string }>(
        (resolve, reject) => {
          const child = spawn('npm', ['run', '--silent', 'demo'], {
            cwd: ROOT,
            env: cleanEnv(),
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let text = '';
          child.stdout.on('data', (c: Buffer) => {
            text += c.toString();
          });
          child.stderr.on('data', (c: Buffer) => {
            text += c.toString();
          });
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`the demo did not finish in time:\n${text}`));
          }, DEMO_TIMEOUT_MS);
          child.once('exit', (exitCode) => {
            clearTimeout(timer);
            resolve({ code: exitCode, output: text });
          });
        },
      );
      expect(code, output).toBe(0);
      const [shadow, enforced] = output.split('▶ alice@example.com asks to ENFORCE');
      expect(enforced, output).toBeDefined();

      // Shadow: flagged with the policy, version, rule, reason and values; nothing enforced.
      expect(shadow).toMatch(
        /flagged +would stop_job: policy "runaway-guard" version [0-9a-f]{12} \(shadow\), rule "agent-loop" ×\d+/,
      );
      expect(shadow).toContain(
        'why       the job sent the same prompt 4 times within 5 minutes: it is looping',
      );
      expect(shadow).toMatch(/values +repeated_prompts=3→\d+ \(rule: >= 3\)/);
      expect(shadow).not.toMatch(/ signal {4}/);

      // The promotion to enforce was approved by someone other than its author.
      expect(enforced).toMatch(/^ "runaway-guard" [0-9a-f]{12}; bob@example\.com approves/);

      // Enforce: stopped, SIGTERM, restarted once, throttled, finished.
      const timeline = enforced!.slice(enforced!.indexOf('Timeline of job'));
      const order = [
        /stopped +stop_job: policy "runaway-guard" version [0-9a-f]{12} \(enforce\), rule "agent-loop"/,
        /signal +SIGTERM to pid \d+/,
        /exit +attempt 1 exited with code 143/,
        /cleared +job release-notes-2 cleared/,
        /restart +attempt 2 in 500 ms: a policy stopped it; restart 1 of 1/,
        /start +attempt 2: pid \d+/,
        /throttled throttle \(delay 300 ms\): policy "runaway-guard" version [0-9a-f]{12} \(enforce\), rule "burst" ×\d+/,
        /exit +attempt 2 exited with code 0/,
        /key +job key revoked/,
        /end +exit code 0/,
      ];
      const at = order.map((pattern) => timeline.search(pattern));
      expect(
        at.every((p) => p >= 0),
        timeline,
      ).toBe(true);
      expect([...at].sort((a, b) => a - b)).toEqual(at);
      expect(timeline).toMatch(/values +requests_per_minute=10→\d+ \(rule: >= 10\)/);
      expect(output).toContain('✔ recover: restarted once');
      expect(output).not.toContain('✖');
      expect(Date.now() - started).toBeLessThan(DEMO_TIMEOUT_MS);
    },
    DEMO_TIMEOUT_MS + 10_000,
  );
});

import { main } from '../src/cli.js';

/** Runs `flowloom ARGS` in this process against a platform at `url`, capturing what it prints. */
export async function runCli(
  env: { url: string; apiKey: string },
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, {
    out: (text) => out.push(text),
    err: (text) => err.push(text),
    env: { FLOWLOOM_URL: env.url, FLOWLOOM_API_KEY: env.apiKey },
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import type { Io } from '../src/command.js';

async function help(argv: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => out.push(t), env: {} };
  const code = await main(argv, io);
  return { code, out: out.join('\n') };
}

describe('flowloom <command> <subcommand> --help', () => {
  it('when a subcommand asks for help, then only its usage and description are shown, with where the rest is', async () => {
    const push = await help(['policy', 'push', '--help']);
    expect(push.code).toBe(0);
    expect(push.out).toMatch(/^ {2}flowloom policy push FILE/);
    expect(push.out).toContain('Pushing does not deploy.');
    expect(push.out).not.toContain('flowloom policy promote');
    expect(push.out).toContain('flowloom policy --help describes the whole command');

    // The prose that names the subcommand comes along: what resuming is for.
    const resume = await help(['keys', 'resume', '--help']);
    expect(resume.out).toContain('flowloom keys resume ID');
    expect(resume.out).toContain('suspend_key');
    expect(resume.out).not.toContain('flowloom keys rotate ID');

    const create = await help(['keys', 'create', '-h']);
    expect(create.out).toContain('flowloom keys create --name NAME');
    expect(create.out).not.toContain('flowloom keys revoke');
  });

  it('when the command itself or an unknown subcommand asks for help, then the whole help is shown', async () => {
    for (const argv of [
      ['keys', '--help'],
      ['keys', 'frobnicate', '--help'],
    ]) {
      const whole = await help(argv);
      expect(whole.code).toBe(0);
      expect(whole.out).toMatch(/^Usage: flowloom keys/);
      expect(whole.out).toContain('flowloom keys revoke');
    }
  });
});

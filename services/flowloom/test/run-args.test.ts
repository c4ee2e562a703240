import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/command.js';
import { jobId, parseRunArgs, splitCommand } from '../src/commands/run.js';
import { commandLine, jobEnvironment } from '../src/run/supervisor.js';

describe('flowloom run arguments', () => {
  it('when options come before -- and the command after, then the command keeps its own flags', () => {
    expect(splitCommand(['--name', 'x', '--', 'node', 'a.js', '--name', 'y'])).toEqual({
      options: ['--name', 'x'],
      command: ['node', 'a.js', '--name', 'y'],
    });
    const parsed = parseRunArgs([
      '--max-restarts',
      '2',
      '--grace-seconds',
      '1.5',
      '--max-memory',
      '512',
      '--repeat-lines',
      '0',
      '--cpu-alert',
      '90',
      '--',
      'python',
      'agent.py',
      '--max-restarts',
    ]);
    expect(parsed).toMatchObject({
      command: 'python',
      args: ['agent.py', '--max-restarts'],
      name: 'python',
      restart: { maxRestarts: 2, baseDelayMs: 1_000 },
      graceMs: 1_500,
      watches: {
        maxMemoryBytes: 512 * 1024 * 1024,
        silenceMs: 300_000,
        repeatedOutput: false,
        cpu: { percent: 90, forMs: 60_000 },
      },
    });
  });

  it('when the defaults apply, then restarts are off, the grace is 10 s and repeated output alerts at 20', () => {
    expect(parseRunArgs(['--', 'node'])).toMatchObject({
      restart: { maxRestarts: 0 },
      graceMs: 10_000,
      watches: { repeatedOutput: { threshold: 20, windowLines: 200 } },
    });
  });

  it('when the command or a value is missing or wrong, then a usage error says what to fix', () => {
    expect(() => parseRunArgs(['--name', 'x'])).toThrow(UsageError);
    expect(() => parseRunArgs(['--name', 'x', '--'])).toThrow(/give the command/);
    expect(parseRunArgs(['node', 'a.js', '--verbose'])).toMatchObject({
      command: 'node',
      args: ['a.js', '--verbose'],
    });
    expect(() => parseRunArgs(['--max-restarts', '-1', '--', 'x'])).toThrow(/--max-restarts/);
    expect(() => parseRunArgs(['--max-restarts', '1.5', '--', 'x'])).toThrow(/whole number/);
    expect(() => parseRunArgs(['--repeat-lines', '1', '--', 'x'])).toThrow(/--repeat-lines/);
    expect(() => parseRunArgs(['--grace-seconds', 'soon', '--', 'x'])).toThrow(/--grace-seconds/);
    expect(() => parseRunArgs(['--bogus', '--', 'x'])).toThrow();
  });

  it('when a job id is made, then it is printable ASCII without spaces, as x-flowloom-job requires', () => {
    expect(jobId('nightly agent ü', 'abc123')).toBe('nightly-agent-abc123');
    expect(jobId('   ', 'abc123')).toBe('job-abc123');
    expect(jobId('x')).toMatch(/^x-[0-9a-f]{6}$/);
  });

  it('when the job environment is built, then the admin key and provider credentials are withheld and the job gets its own', () => {
    const env = jobEnvironment(
      {
        PATH: '/bin',
        FLOWLOOM_API_KEY: 'flk_admin',
        FLOWLOOM_ADMIN_KEY: 'flk_boot',
        OPENAI_API_KEY: 'sk-real',
        GEMINI_API_KEY: 'g-real',
        AZURE_OPENAI_API_KEY: 'az',
        UNSET: undefined,
      },
      { endpoint: 'http://127.0.0.1:4000', key: 'flk_job', id: 'job-1', attempt: 2 },
    );
    expect(env).toEqual({
      PATH: '/bin',
      OPENAI_BASE_URL: 'http://127.0.0.1:4000/v1',
      OPENAI_API_KEY: 'flk_job',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:4000',
      ANTHROPIC_API_KEY: 'flk_job',
      FLOWLOOM_URL: 'http://127.0.0.1:4000',
      FLOWLOOM_API_KEY: 'flk_job',
      FLOWLOOM_JOB: 'job-1',
      FLOWLOOM_ATTEMPT: '2',
    });
  });

  it('when a command line is shown, then arguments with spaces are quoted', () => {
    expect(commandLine('node', ['a.js', 'two words', '--x=1'])).toBe('node a.js "two words" --x=1');
  });
});

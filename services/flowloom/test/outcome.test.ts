import { describe, expect, it } from 'vitest';
import { type AttemptEnd, decideRestart, EXIT_CODES, exitCodeOf } from '../src/run/outcome.js';

const rule = { maxRestarts: 2, baseDelayMs: 500, maxDelayMs: 1_500 };

describe('restart policy', () => {
  it('when the job finishes with exit 0, then it is never restarted', () => {
    expect(decideRestart({ kind: 'exited', code: 0 }, 0, rule)).toMatchObject({ restart: false });
  });

  it('when the job crashes or a policy or limit stops it, then it restarts while restarts are left, with a doubling delay', () => {
    const crash: AttemptEnd = { kind: 'exited', code: 1 };
    expect(decideRestart(crash, 0, rule)).toEqual({
      restart: true,
      delayMs: 500,
      why: 'it failed (exit 1); restart 1 of 2 (--max-restarts 2)',
    });
    expect(decideRestart({ kind: 'signaled', signal: 'SIGSEGV' }, 1, rule)).toMatchObject({
      restart: true,
      delayMs: 1_000,
    });
    expect(decideRestart({ kind: 'stopped', by: 'policy' }, 1, rule)).toMatchObject({
      restart: true,
      why: expect.stringMatching(/^a policy stopped it; restart 2 of 2/),
    });
    expect(decideRestart({ kind: 'stopped', by: 'limit' }, 2, rule)).toEqual({
      restart: false,
      why: 'it crossed a local limit; no restart left (--max-restarts 2)',
    });
  });

  it('when the delay would grow past the cap, then the cap applies', () => {
    expect(decideRestart({ kind: 'exited', code: 2 }, 4, { ...rule, maxRestarts: 10 })).toMatchObject({
      delayMs: 1_500,
    });
  });

  it('when a person decided (an admin stop, a suspended key, Ctrl-C), then nothing is restarted', () => {
    for (const by of ['admin', 'key_suspended', 'interrupt'] as const)
      expect(decideRestart({ kind: 'stopped', by }, 0, rule).restart).toBe(false);
  });

  it('when restarts are off, then the reason says so', () => {
    expect(decideRestart({ kind: 'exited', code: 1 }, 0, { ...rule, maxRestarts: 0 })).toEqual({
      restart: false,
      why: 'it failed (exit 1); restarts are off (--max-restarts 0)',
    });
  });

  it('when the command cannot be started, then it is not retried', () => {
    expect(
      decideRestart({ kind: 'spawn_failed', message: 'x: command not found', notFound: true }, 0, rule)
        .restart,
    ).toBe(false);
  });
});

describe('exit codes', () => {
  it('when the job ended by itself, then its own code is passed on; a foreign signal is 128+N', () => {
    expect(exitCodeOf({ kind: 'exited', code: 7 })).toBe(7);
    expect(exitCodeOf({ kind: 'signaled', signal: 'SIGKILL' })).toBe(137);
    expect(exitCodeOf({ kind: 'signaled', signal: 'SIGTERM' })).toBe(143);
  });

  it('when FlowLoom stopped the job, then the documented codes are used', () => {
    expect(exitCodeOf({ kind: 'stopped', by: 'policy' })).toBe(EXIT_CODES.stopped);
    expect(exitCodeOf({ kind: 'stopped', by: 'key_suspended' })).toBe(EXIT_CODES.stopped);
    expect(exitCodeOf({ kind: 'stopped', by: 'interrupt' })).toBe(130);
    expect(exitCodeOf({ kind: 'spawn_failed', message: 'nope', notFound: true })).toBe(127);
    expect(EXIT_CODES.stopped).toBe(3);
  });
});

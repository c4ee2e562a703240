import { constants } from 'node:os';

/**
 * Exit codes of `flowloom run` (README "Supervising local jobs"): the job's own code when it ended by
 * itself, 128+N when a signal FlowLoom did not send killed it (as a shell reports it), and these.
 */
export const EXIT_CODES = {
  /** `flowloom run` could not start the job (platform unreachable, key not issued). */
  failed: 1,
  usage: 2,
  /** FlowLoom stopped the job (a policy's stop_job or suspend_key, an admin, or a local limit) and no restart was left. */
  stopped: 3,
  /** The command was not found or could not be executed. */
  notFound: 127,
  /** The user interrupted `flowloom run` (Ctrl-C). */
  interrupted: 130,
} as const;

/** Who stopped an attempt, when FlowLoom did. */
export type StopOrigin =
  /** A policy decision: stop_job (or the job was found stopped by one). */
  | 'policy'
  /** A policy suspended the job's key: nothing the job does can succeed until an admin acts. */
  | 'key_suspended'
  /** An admin stopped the job through the API. */
  | 'admin'
  /** A local limit of `flowloom run` (memory). */
  | 'limit'
  /** The user interrupted `flowloom run`. */
  | 'interrupt';

/** How an attempt ended. */
export type AttemptEnd =
  | { kind: 'exited'; code: number }
  | { kind: 'signaled'; signal: string }
  | { kind: 'stopped'; by: StopOrigin }
  | { kind: 'spawn_failed'; message: string; notFound: boolean };

export interface RestartRule {
  maxRestarts: number;
  /** Delay before the first restart; doubles with every further one, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RESTART_RULE: RestartRule = { maxRestarts: 0, baseDelayMs: 1_000, maxDelayMs: 30_000 };

export type RestartDecision =
  | { restart: true; delayMs: number; why: string }
  | { restart: false; why: string };

/**
 * Whether to start the job again. A job that finished (exit 0) is done. A crash or a stop by a policy
 * or a local limit is restarted while restarts are left. A person's decision is final: an admin's stop,
 * a suspended key (only an admin can resume it) and the user's Ctrl-C are never undone here.
 */
export function decideRestart(end: AttemptEnd, restartsSoFar: number, rule: RestartRule): RestartDecision {
  const left = rule.maxRestarts - restartsSoFar;
  const budget = `restart ${restartsSoFar + 1} of ${rule.maxRestarts}`;
  let reason: string;
  switch (end.kind) {
    case 'exited':
      if (end.code === 0) return { restart: false, why: 'the job finished (exit 0)' };
      reason = `it failed (exit ${end.code})`;
      break;
    case 'signaled':
      reason = `it was killed by ${end.signal}`;
      break;
    case 'spawn_failed':
      return { restart: false, why: `the command could not be started: ${end.message}` };
    case 'stopped':
      if (end.by === 'admin')
        return { restart: false, why: 'an admin stopped the job; that is not undone here' };
      if (end.by === 'key_suspended')
        return {
          restart: false,
          why: "a policy suspended the job's key; an admin must resume it (flowloom keys resume ID)",
        };
      if (end.by === 'interrupt') return { restart: false, why: 'interrupted by the user' };
      reason = end.by === 'policy' ? 'a policy stopped it' : 'it crossed a local limit';
      break;
  }
  if (left <= 0)
    return {
      restart: false,
      why:
        rule.maxRestarts === 0
          ? `${reason}; restarts are off (--max-restarts 0)`
          : `${reason}; no restart left (--max-restarts ${rule.maxRestarts})`,
    };
  const delayMs = Math.min(rule.maxDelayMs, rule.baseDelayMs * 2 ** restartsSoFar);
  return { restart: true, delayMs, why: `${reason}; ${budget} (--max-restarts ${rule.maxRestarts})` };
}

/** The exit code of `flowloom run` for the last attempt's end. */
export function exitCodeOf(end: AttemptEnd): number {
  switch (end.kind) {
    case 'exited':
      return end.code;
    case 'signaled': {
      const number = (constants.signals as Record<string, number | undefined>)[end.signal];
      return number === undefined ? EXIT_CODES.failed : 128 + number;
    }
    case 'spawn_failed':
      return end.notFound ? EXIT_CODES.notFound : EXIT_CODES.failed;
    case 'stopped':
      return end.by === 'interrupt' ? EXIT_CODES.interrupted : EXIT_CODES.stopped;
  }
}

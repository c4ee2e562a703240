import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { type Command, type Io, UsageError } from '../command.js';
import { ApiJobWatcher } from '../run/api-job-watcher.js';
import { type JobPolicySpec, jobPolicySpec } from '../run/job-policy.js';
import { DEFAULT_RESTART_RULE, EXIT_CODES } from '../run/outcome.js';
import { PlatformApi, PlatformApiError } from '../run/platform-api.js';
import { DEFAULT_REPEATED_OUTPUT } from '../run/repeated-output.js';
import { PlainConsole, type SupervisorConsole, TtyConsole } from '../run/status-line.js';
import {
  commandLine,
  type SupervisionResult,
  Supervisor,
  type SupervisorOptions,
} from '../run/supervisor.js';
import { formatTimeline, shortVersion } from '../run/timeline.js';

const HELP = `Usage: flowloom run [options] -- CMD [ARGS...]

Runs CMD as a supervised job. It gets a key of its own and FlowLoom in front of its AI calls:
OPENAI_BASE_URL, ANTHROPIC_BASE_URL, OPENAI_API_KEY, ANTHROPIC_API_KEY (the job's key) and
FLOWLOOM_JOB, FLOWLOOM_ATTEMPT are set; every request is tagged with the job. FlowLoom watches the
process (CPU, memory, repeated output, silence) and what the policies decide about its requests, and
acts: alerts, throttles (in the gateway), stops (SIGTERM, then SIGKILL after the grace period) and
restarts within a limit. A status line shows the job live; at the end a timeline says what happened
and why, and the job's key is revoked.

Needs a running platform: FLOWLOOM_URL (default http://127.0.0.1:8080) and FLOWLOOM_API_KEY (an admin key).

Options:
  --name N               job name (default: the command's name); the job id is N plus a random suffix
  --policy P             also run the job under policy P: a policy file (YAML or JSON), or the id (or a
                         unique prefix) of a pushed version. A file is validated first (a bad one is refused
                         with pointed messages and the job does not start), then pushed as a version that
                         is recorded (author, message) but not deployed. The version is bound to the job's
                         key: the gateway evaluates it for the job's requests in addition to the active
                         policies, combined by the usual rules (block wins), so it can only add
                         restrictions, never lift one; that is why it needs no second person's approval.
                         It may not reroute. Its decisions are recorded and explained like every other.
  --project P            tag the job's key, and so its traffic, with project P
  --max-restarts K       restart after a crash or a stop by a policy or limit, K times at most (default 0)
  --restart-delay S      seconds before the first restart, doubling after each (default 1)
  --grace-seconds S      between SIGTERM and SIGKILL (default 10)
  --max-memory MB        stop the job when its processes use more resident memory than this
  --silence-seconds S    alert when the job prints nothing and calls no model for S seconds (default 300)
  --repeat-lines N       alert when one output line comes N times in the last 200 lines (default 20, 0: off)
  --cpu-alert PERCENT    alert when the job keeps PERCENT of a core busy for a minute (e.g. 90)

Exit code: the job's own; 128+N if a signal FlowLoom did not send killed it; ${EXIT_CODES.stopped} when FlowLoom
stopped it (no restart left); ${EXIT_CODES.interrupted} when interrupted; ${EXIT_CODES.notFound} when CMD was not found; ${EXIT_CODES.failed} when the job
could not be set up (platform unreachable); ${EXIT_CODES.usage} for usage errors (an invalid --policy included).

Examples:
  flowloom run --name nightly-agent --max-restarts 2 -- python agent.py --task triage
  flowloom run --policy ./strict-loop-guard.yaml -- node agent.js`;

const CPU_ALERT_AFTER_MS = 60_000;

function positiveNumber(
  name: string,
  value: string | undefined,
  fallback: number,
  allowZero = false,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0))
    throw new UsageError(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  return n;
}

/** A job id the gateway accepts in x-flowloom-job: printable ASCII without spaces. */
export function jobId(name: string, suffix = randomBytes(3).toString('hex')): string {
  const clean =
    name
      .replace(/[^\x21-\x7e]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 180) || 'job';
  return `${clean}-${suffix}`;
}

/** Splits `flowloom run` arguments at `--`: options before, the command after. */
export function splitCommand(args: readonly string[]): { options: string[]; command: string[] } {
  const at = args.indexOf('--');
  if (at !== -1) return { options: args.slice(0, at), command: args.slice(at + 1) };
  // Without --, everything is the command; an option there means the -- was forgotten.
  if (args[0]?.startsWith('-'))
    throw new UsageError('put the command after --, e.g. flowloom run --name agent -- node agent.js');
  return { options: [], command: [...args] };
}

export function parseRunArgs(args: readonly string[]) {
  const split = splitCommand(args);
  const { values } = parseArgs({
    args: split.options,
    strict: true,
    options: {
      name: { type: 'string' },
      policy: { type: 'string' },
      project: { type: 'string' },
      'max-restarts': { type: 'string' },
      'restart-delay': { type: 'string' },
      'grace-seconds': { type: 'string' },
      'max-memory': { type: 'string' },
      'silence-seconds': { type: 'string' },
      'repeat-lines': { type: 'string' },
      'cpu-alert': { type: 'string' },
    },
  });
  const [command, ...commandArgs] = split.command;
  if (!command) throw new UsageError('give the command to run after --, e.g. flowloom run -- node agent.js');
  const restarts = positiveNumber('max-restarts', values['max-restarts'], 0, true);
  if (!Number.isInteger(restarts)) throw new UsageError('--max-restarts must be a whole number');
  const repeatLines = positiveNumber(
    'repeat-lines',
    values['repeat-lines'],
    DEFAULT_REPEATED_OUTPUT.threshold,
    true,
  );
  if (
    repeatLines === 1 ||
    !Number.isInteger(repeatLines) ||
    repeatLines > DEFAULT_REPEATED_OUTPUT.windowLines
  )
    throw new UsageError(
      `--repeat-lines must be 0 (off) or a whole number from 2 to ${DEFAULT_REPEATED_OUTPUT.windowLines}`,
    );
  const cpuAlert =
    values['cpu-alert'] === undefined ? undefined : positiveNumber('cpu-alert', values['cpu-alert'], 0);
  const memoryMb =
    values['max-memory'] === undefined ? undefined : positiveNumber('max-memory', values['max-memory'], 0);
  return {
    command,
    args: commandArgs,
    name: values.name ?? basename(command),
    policy: values.policy,
    project: values.project,
    restart: {
      ...DEFAULT_RESTART_RULE,
      maxRestarts: restarts,
      baseDelayMs: positiveNumber('restart-delay', values['restart-delay'], 1, true) * 1000,
    },
    graceMs: positiveNumber('grace-seconds', values['grace-seconds'], 10, true) * 1000,
    watches: {
      ...(memoryMb !== undefined ? { maxMemoryBytes: memoryMb * 1024 * 1024 } : {}),
      ...(cpuAlert !== undefined ? { cpu: { percent: cpuAlert, forMs: CPU_ALERT_AFTER_MS } } : {}),
      silenceMs: positiveNumber('silence-seconds', values['silence-seconds'], 300) * 1000,
      repeatedOutput:
        repeatLines === 0 ? (false as const) : { ...DEFAULT_REPEATED_OUTPUT, threshold: repeatLines },
    },
  };
}

/** Says which policies govern the job (besides its own --policy). */
async function describePolicies(api: PlatformApi, io: Io): Promise<void> {
  let active: Awaited<ReturnType<PlatformApi['activePolicies']>>;
  try {
    active = await api.activePolicies();
  } catch (error) {
    if (error instanceof PlatformApiError && error.missingEndpoint) return;
    throw error;
  }
  const names = active.policies.map((p) => {
    const parts = [
      ...(p.stable ? [`${shortVersion(p.stable)} enforce`] : []),
      ...(p.candidate
        ? [
            `${shortVersion(p.candidate.version)} ${p.candidate.mode}${p.candidate.percent !== undefined ? ` ${p.candidate.percent}%` : ''}`,
          ]
        : []),
    ];
    return `${p.name} (${parts.join(', ')})`;
  });
  io.err(
    names.length > 0
      ? `flowloom: policies in force: ${names.join('; ')}`
      : 'flowloom: no policy is in force: FlowLoom watches and records, but no policy will intervene',
  );
}

/**
 * The job policy to bind to the job's key: a file is pushed (recorded, not deployed); a version id is
 * passed on as given (the gateway resolves it when it issues the key). Prints what the job runs under.
 */
async function jobPolicy(
  api: PlatformApi,
  spec: JobPolicySpec,
  job: string,
  io: Io,
): Promise<SupervisorOptions['policy']> {
  if (spec.kind === 'version') return { version: spec.id };
  const pushed = await api.pushPolicy(
    spec.source,
    basename(spec.path),
    `job policy of flowloom run ${job} (bound to the job's key only; not deployed)`,
  );
  io.err(
    `flowloom: job policy "${pushed.name}" version ${shortVersion(pushed.version)} ${pushed.created ? `pushed as #${pushed.seq} by ${pushed.author}` : 'was pushed before'}; it applies to this job only, in addition to the policies in force, and can only add restrictions`,
  );
  return { version: pushed.version, name: pushed.name };
}

/** The platform refused what was asked (invalid, unknown): a usage error, not an outage. */
function refusedInput(error: unknown): boolean {
  return error instanceof PlatformApiError && (error.status === 400 || error.status === 404);
}

export function printTimeline(result: SupervisionResult, write: (line: string) => void): void {
  write('');
  for (const line of formatTimeline(result.entries, {
    job: result.job,
    command: result.command,
    durationMs: result.durationMs,
  }))
    write(line);
}

export const runCommand: Command = {
  name: 'run',
  summary: 'Run a local job under FlowLoom supervision (its own key, policies, stop/restart, timeline)',
  help: HELP,
  async run(args, io) {
    const parsed = parseRunArgs(args);
    // A bad policy file is refused before anything happens: no key, no push, no job.
    let spec: JobPolicySpec | undefined;
    try {
      spec = parsed.policy === undefined ? undefined : jobPolicySpec(parsed.policy);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      io.err(`flowloom run: ${error.message}`);
      return EXIT_CODES.usage;
    }
    const key = io.env.FLOWLOOM_API_KEY;
    if (!key)
      throw new UsageError(
        'FLOWLOOM_API_KEY is not set. Export an admin key (printed once by `flowloom up`, or FLOWLOOM_ADMIN_KEY).',
      );
    const url = io.env.FLOWLOOM_URL ?? 'http://127.0.0.1:8080';
    const api = new PlatformApi(url, key);
    const described = await describePolicies(api, io).then(
      () => true,
      (error: Error) => {
        io.err(`flowloom run: ${error.message}`);
        return false;
      },
    );
    if (!described) return EXIT_CODES.failed;
    const job = jobId(parsed.name);
    let policy: SupervisorOptions['policy'];
    try {
      policy = spec ? await jobPolicy(api, spec, job, io) : undefined;
    } catch (error) {
      io.err(
        `flowloom run: the job policy was refused; the job was not started: ${(error as Error).message}`,
      );
      return refusedInput(error) ? EXIT_CODES.usage : EXIT_CODES.failed;
    }
    const tty = process.stderr.isTTY === true && !io.env.CI && io.env.TERM !== 'dumb';
    const console: SupervisorConsole = tty
      ? new TtyConsole(process.stdout, process.stderr)
      : new PlainConsole(io);
    const options: SupervisorOptions = {
      job,
      command: parsed.command,
      args: parsed.args,
      gatewayUrl: url,
      api,
      watcher: new ApiJobWatcher(api),
      console,
      restart: parsed.restart,
      graceMs: parsed.graceMs,
      watches: parsed.watches,
      env: io.env,
      ...(parsed.project ? { project: parsed.project } : {}),
      ...(policy ? { policy } : {}),
    };
    const supervisor = new Supervisor(options);
    io.err(`flowloom: job ${job}: ${commandLine(parsed.command, parsed.args)}`);
    const onSignal = (signal: NodeJS.Signals): void => supervisor.interrupt(signal);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let result: SupervisionResult;
    try {
      result = await supervisor.run();
    } catch (error) {
      io.err(`flowloom run: ${(error as Error).message}`);
      // The gateway refused to bind the job policy (unknown version, a reroute): the job never started.
      return policy && refusedInput(error) ? EXIT_CODES.usage : EXIT_CODES.failed;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    printTimeline(result, io.err);
    return result.exitCode;
  },
};

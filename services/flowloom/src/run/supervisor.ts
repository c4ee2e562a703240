import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { SupervisorReport, Threshold } from '@flowloom/contracts';
import { canonicalJson } from '@flowloom/policy-engine';
import { type ProxyExchange, startJobProxy } from './job-proxy.js';
import {
  findingOfRefusal,
  findingOfStop,
  type JobObservation,
  type JobWatch,
  type JobWatcher,
} from './job-watcher.js';
import { LineSplitter } from './line-splitter.js';
import {
  type AttemptEnd,
  decideRestart,
  EXIT_CODES,
  exitCodeOf,
  type RestartRule,
  type StopOrigin,
} from './outcome.js';
import { type IssuedJobKey, type PlatformApi, PlatformApiError } from './platform-api.js';
import { ProcessGroupSampler, type ProcessUsage } from './proc-stats.js';
import { RepeatedOutputDetector, type RepeatedOutputOptions } from './repeated-output.js';
import { SilenceDetector } from './silence.js';
import { formatBytes, type StatusSnapshot, type SupervisorConsole } from './status-line.js';
import {
  findingSource,
  findingVerb,
  formatDuration,
  formatValues,
  type PolicyFinding,
  shortVersion,
  type TimelineEntry,
  type TimelineEvent,
} from './timeline.js';

/** Local limits and alerts of `flowloom run`, on the process itself rather than its AI traffic. */
export interface LocalWatches {
  /** Stop the job when its process group's resident memory exceeds this. */
  maxMemoryBytes?: number;
  /** Alert when the job prints nothing and calls no model for this long. */
  silenceMs?: number;
  /** Alert when the same line keeps coming back; false turns it off. */
  repeatedOutput?: RepeatedOutputOptions | false;
  /** Alert when the job keeps at least `percent` of a core busy for `forMs`. */
  cpu?: { percent: number; forMs: number };
}

export interface SupervisorOptions {
  job: string;
  command: string;
  args: readonly string[];
  /** The gateway the job's requests go to (FLOWLOOM_URL). */
  gatewayUrl: string;
  /** The admin API: the job's key, clearing a stop before a restart, revoking the key at the end. */
  api: PlatformApi;
  watcher: JobWatcher;
  console: SupervisorConsole;
  restart: RestartRule;
  /** Between SIGTERM and SIGKILL. */
  graceMs: number;
  watches?: LocalWatches;
  /** The environment the job starts from (FlowLoom's own variables are replaced). */
  env: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /** Tags the job's key (and so its traffic) with a project. */
  project?: string;
  /**
   * A job policy: the version (id or prefix) evaluated for the job's requests next to the active
   * policies; the gateway refuses the key (and so the job never starts) when it cannot be one.
   */
  policy?: { version: string; name?: string };
  /** How often CPU and memory are sampled. */
  sampleEveryMs?: number;
  /** How the command is shown (default: the command line itself). */
  label?: string;
  /**
   * Runs after the last attempt, before the platform is asked a last time: e.g. publishing the
   * events of the job's last requests when the platform runs in this process.
   */
  settle?: () => Promise<void>;
  /** Every timeline entry as it happens. */
  onEntry?: (entry: TimelineEntry) => void;
  now?: () => number;
}

export interface SupervisionResult {
  job: string;
  command: string;
  exitCode: number;
  /** Why `flowloom run` ends with this code. */
  why: string;
  durationMs: number;
  entries: TimelineEntry[];
  requests: number;
}

interface Attempt {
  number: number;
  child: ChildProcess;
  pid: number;
  startedAt: number;
  stop?: { by: StopOrigin; at: number; signal: NodeJS.Signals };
  killTimer?: NodeJS.Timeout;
}

/** The variables of FlowLoom and of AI providers that the job must not inherit from `flowloom run`. */
const WITHHELD = [
  'FLOWLOOM_ADMIN_KEY',
  'FLOWLOOM_API_KEY',
  'FLOWLOOM_URL',
  'OPENAI_API_KEY',
  'OPENAI_BASE_URL',
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_BASE_URL',
  'ANTHROPIC_AUTH_TOKEN',
  'GEMINI_API_KEY',
  'GOOGLE_API_KEY',
  'AZURE_OPENAI_API_KEY',
];

/**
 * The job's environment: its endpoint and key for the OpenAI and Anthropic SDKs and for FlowLoom's
 * own clients, its job id and attempt number. The admin key and any provider credential of the
 * caller are withheld, so the job reaches models only through FlowLoom, as itself.
 */
export function jobEnvironment(
  base: Readonly<Record<string, string | undefined>>,
  job: { endpoint: string; key: string; id: string; attempt: number },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base))
    if (value !== undefined && !WITHHELD.includes(name)) env[name] = value;
  return {
    ...env,
    OPENAI_BASE_URL: `${job.endpoint}/v1`,
    OPENAI_API_KEY: job.key,
    ANTHROPIC_BASE_URL: job.endpoint,
    ANTHROPIC_API_KEY: job.key,
    FLOWLOOM_URL: job.endpoint,
    FLOWLOOM_API_KEY: job.key,
    FLOWLOOM_JOB: job.id,
    FLOWLOOM_ATTEMPT: String(job.attempt),
  };
}

/** A shell-like rendering of a command line, for humans. */
export function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

const FINDING_NOTICE_QUIET_MS = 5_000;

const ENFORCED_HEAD: Readonly<Record<string, string>> = {
  stop_job: 'STOPPED',
  suspend_key: 'KEY SUSPENDED',
  block: 'BLOCKED',
  throttle: 'THROTTLED',
  reroute: 'REROUTED',
  redact: 'REDACTED',
  cap_max_tokens: 'CAPPED',
  alert: 'ALERT',
};

/**
 * Supervises one job: issues its key, starts it with FlowLoom in front of its AI calls, watches the
 * process and what the policies decide about it, carries out the decisions (alert, throttle is the
 * gateway's, stop with SIGTERM then SIGKILL, restart within a limit), revokes the key, and keeps the
 * timeline of what happened and why.
 */
export class Supervisor {
  private readonly now: () => number;
  private readonly entries: TimelineEntry[] = [];
  private readonly findings = new Map<string, TimelineEntry>();
  /** Stops by a decision already acted on (a poll may report one again after the restart cleared it). */
  private readonly handledStops = new Set<string>();
  private readonly noticedAt = new Map<string, { at: number; suppressed: number }>();
  private readonly commandText: string;
  private startedAt = 0;
  private attempt: Attempt | undefined;
  private attemptNumber = 0;
  private state: StatusSnapshot['state'] = 'starting';
  private usage: ProcessUsage | undefined;
  private requests = 0;
  private refused = 0;
  private tokens = 0;
  private flagged = 0;
  private enforced = 0;
  private last: string | undefined;
  private key: IssuedJobKey | undefined;
  private keySuspended = false;
  /** A person's stop (an admin, the user): no restart after it. */
  private finalStop: StopOrigin | undefined;
  private wakeRestartWait: (() => void) | undefined;
  private silence: SilenceDetector | undefined;
  /** The supervisor's own rules, as the version its interventions are recorded under. */
  private readonly watchesVersion: string;
  /**
   * Reports of the supervisor's interventions on their way to the platform, one after the other: they
   * arrive in the order they happened, and a platform without the endpoint is asked only once.
   */
  private reports: Promise<void> = Promise.resolve();
  private reportsUnsupported = false;

  constructor(private readonly options: SupervisorOptions) {
    this.now = options.now ?? Date.now;
    this.commandText = options.label ?? commandLine(options.command, options.args);
    this.watchesVersion = createHash('sha256')
      .update(canonicalJson(options.watches ?? {}), 'utf8')
      .digest('hex');
  }

  /** The user interrupted `flowloom run`: pass the signal on, no restart. */
  interrupt(signal: NodeJS.Signals): void {
    this.finalStop = 'interrupt';
    this.wakeRestartWait?.();
    this.stopAttempt('interrupt', `${signal} received: passing it on to the job`, signal);
  }

  async run(): Promise<SupervisionResult> {
    const o = this.options;
    this.startedAt = this.now();
    this.key = await o.api.createJobKey(o.job, o.project, o.policy?.version);
    const bound = this.key.policy;
    this.record({
      kind: 'key',
      action: 'created',
      hint: this.key.hint,
      detail: bound
        ? `job ${o.job}, under job policy ${o.policy?.name ? `"${o.policy.name}" ` : ''}version ${shortVersion(bound)} (in addition to the active policies)`
        : `job ${o.job}`,
    });
    const proxy = await startJobProxy({
      upstream: o.gatewayUrl,
      job: o.job,
      onRequest: () => this.silence?.activity(this.now()),
      onExchange: (exchange) => this.onExchange(exchange),
    }).catch(async (error: unknown) => {
      await this.revokeKey();
      throw error;
    });
    const watch = o.watcher.watch(o.job, (observation) => this.observe(observation));
    this.watch = watch;
    const statusTimer = setInterval(() => this.drawStatus(), 250);
    let end: AttemptEnd = { kind: 'exited', code: 0 };
    let why = '';
    try {
      for (let restarts = 0; ; restarts++) {
        end = await this.runAttempt(restarts + 1, proxy.url);
        if (this.finalStop === 'interrupt') end = { kind: 'stopped', by: 'interrupt' };
        const decision = this.finalStop
          ? { restart: false as const, why: finalWhy(this.finalStop) }
          : decideRestart(end, restarts, o.restart);
        if (!decision.restart) {
          why = decision.why;
          break;
        }
        if (end.kind === 'stopped' && end.by === 'policy') {
          try {
            await o.api.clearJob(o.job);
            this.record({
              kind: 'cleared',
              why: `job ${o.job} cleared at the gateway so that the restarted job may call models again`,
            });
          } catch (error) {
            why = `the stop could not be cleared for a restart: ${(error as Error).message}`;
            this.record({ kind: 'note', text: why });
            break;
          }
        }
        this.record({ kind: 'restart', attempt: restarts + 2, delayMs: decision.delayMs, why: decision.why });
        this.notice(`restarting in ${formatDuration(decision.delayMs)}: ${decision.why}`);
        this.state = 'waiting to restart';
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, decision.delayMs);
          this.wakeRestartWait = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeRestartWait = undefined;
        if (this.finalStop) {
          end = { kind: 'stopped', by: this.finalStop };
          why = finalWhy(this.finalStop);
          break;
        }
      }
    } finally {
      clearInterval(statusTimer);
      this.state = 'finished';
      // Our own interventions reach the evidence before the platform is asked a last time.
      await this.reports;
      // Findings about the last requests may still be on their way: one last look.
      await o.settle?.().catch(() => {});
      watch.poke();
      await watch.stop();
      await proxy.close();
      await this.revokeKey();
    }
    const exitCode = exitCodeOf(end);
    this.record({ kind: 'end', exitCode, why: exitWhy(end, why) });
    o.console.close();
    return {
      job: o.job,
      command: this.commandText,
      exitCode,
      why: exitWhy(end, why),
      durationMs: this.now() - this.startedAt,
      entries: [...this.entries],
      requests: this.requests,
    };
  }

  private watch: JobWatch | undefined;

  private async revokeKey(): Promise<void> {
    const key = this.key;
    if (!key) return;
    if (this.keySuspended) {
      this.record({
        kind: 'key',
        action: 'suspended',
        hint: key.hint,
        detail: 'already revoked by the policy',
      });
      return;
    }
    try {
      await this.options.api.revokeKey(key.id);
      this.record({ kind: 'key', action: 'revoked', hint: key.hint });
    } catch (error) {
      this.record({
        kind: 'note',
        text: `the job key ${key.hint} (id ${key.id}) could not be revoked: ${(error as Error).message}; revoke it with flowloom keys revoke ${key.id}`,
      });
    }
  }

  private runAttempt(number: number, endpoint: string): Promise<AttemptEnd> {
    const o = this.options;
    this.attemptNumber = number;
    this.state = 'starting';
    const env = jobEnvironment(o.env, { endpoint, key: this.key!.key, id: o.job, attempt: number });
    return new Promise<AttemptEnd>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(o.command, [...o.args], {
          env,
          ...(o.cwd ? { cwd: o.cwd } : {}),
          stdio: ['inherit', 'pipe', 'pipe'],
          // Its own process group: a stop reaches the job's children too, and the terminal's Ctrl-C
          // reaches `flowloom run` first, which passes it on.
          detached: true,
        });
      } catch (error) {
        resolve(this.spawnFailed(number, error as NodeJS.ErrnoException));
        return;
      }
      let settled = false;
      child.once('error', (error: NodeJS.ErrnoException) => {
        if (settled || child.pid !== undefined) return;
        settled = true;
        resolve(this.spawnFailed(number, error));
      });
      if (child.pid === undefined) return;
      const pid = child.pid;
      const startedAt = this.now();
      const attempt: Attempt = { number, child, pid, startedAt };
      this.attempt = attempt;
      this.state = 'running';
      this.usage = undefined;
      this.record({ kind: 'start', attempt: number, pid, command: this.commandText });
      const timers = this.watchProcess(attempt);
      const out = new LineSplitter();
      const err = new LineSplitter();
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of out.push(chunk)) this.onLine('stdout', line);
      });
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of err.push(chunk)) this.onLine('stderr', line);
      });
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      const finish = (): void => {
        if (settled || !exit) return;
        settled = true;
        for (const line of out.end()) this.onLine('stdout', line);
        for (const line of err.end()) this.onLine('stderr', line);
        clearInterval(timers);
        clearTimeout(attempt.killTimer);
        this.attempt = undefined;
        this.usage = undefined;
        const raw: AttemptEnd =
          exit.code !== null
            ? { kind: 'exited', code: exit.code }
            : { kind: 'signaled', signal: exit.signal ?? 'SIGKILL' };
        const ended = this.now();
        this.record({
          kind: 'exit',
          attempt: number,
          end: raw,
          durationMs: ended - startedAt,
          ...(attempt.stop ? { afterSignalMs: ended - attempt.stop.at } : {}),
        });
        void this.reapGroup(attempt).then(() =>
          resolve(attempt.stop ? { kind: 'stopped', by: attempt.stop.by } : raw),
        );
      };
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        // Output still buffered in the pipes comes first; a grandchild holding them open does not hold us.
        setTimeout(finish, 1_000).unref();
      });
      child.once('close', () => finish());
    });
  }

  private spawnFailed(number: number, error: NodeJS.ErrnoException): AttemptEnd {
    const notFound = error.code === 'ENOENT';
    const message = notFound ? `${this.options.command}: command not found` : error.message;
    const end: AttemptEnd = { kind: 'spawn_failed', message, notFound };
    this.record({ kind: 'exit', attempt: number, end, durationMs: 0 });
    return end;
  }

  /** After a stop, members of the job's process group still alive at the end of the grace period are killed. */
  private async reapGroup(attempt: Attempt): Promise<void> {
    if (!attempt.stop) return;
    const deadline = attempt.stop.at + this.options.graceMs;
    while (groupAlive(attempt.pid)) {
      if (this.now() >= deadline) {
        signalGroup(attempt, 'SIGKILL');
        return;
      }
      await sleep(100);
    }
  }

  private watchProcess(attempt: Attempt): NodeJS.Timeout {
    const o = this.options;
    const watches = o.watches ?? {};
    const sampler = new ProcessGroupSampler(attempt.pid);
    this.silence = watches.silenceMs ? new SilenceDetector(watches.silenceMs, this.now()) : undefined;
    this.repeated =
      watches.repeatedOutput === false ? undefined : new RepeatedOutputDetector(watches.repeatedOutput);
    let busySince: number | undefined;
    let busyReported = false;
    let sampling = false;
    return setInterval(() => {
      const now = this.now();
      const quiet = this.silence?.check(now);
      if (quiet)
        this.watchAlert(
          'silence',
          'alert',
          `no output and no model call for ${formatDuration(quiet.silentForMs)}`,
          {
            silent_s: Math.round(quiet.silentForMs / 1000),
            limit_s: Math.round(quiet.silenceMs / 1000),
          },
          {
            signals: { silent_s: quiet.silentForMs / 1000 },
            thresholds: [{ path: 'process.silent_s', operator: '>=', value: quiet.silenceMs / 1000 }],
          },
        );
      if (sampling) return;
      sampling = true;
      void sampler
        .sample(now)
        .then((usage) => {
          if (this.attempt !== attempt || !usage) return;
          this.usage = usage;
          if (o.watches?.maxMemoryBytes && usage.rssBytes > o.watches.maxMemoryBytes && !attempt.stop) {
            const reason = `memory ${formatBytes(usage.rssBytes)} is above --max-memory ${formatBytes(o.watches.maxMemoryBytes)}`;
            const rssMb = Math.round(usage.rssBytes / 1024 / 1024);
            const limitMb = Math.round(o.watches.maxMemoryBytes / 1024 / 1024);
            this.watchAlert(
              'memory',
              'stop',
              reason,
              { rss_mb: rssMb, limit_mb: limitMb, processes: usage.processes },
              {
                signals: { rss_mb: usage.rssBytes / 1024 / 1024, processes: usage.processes },
                thresholds: [
                  { path: 'process.rss_mb', operator: '>', value: o.watches.maxMemoryBytes / 1024 / 1024 },
                ],
              },
            );
            this.stopAttempt('limit', reason);
          }
          const cpu = watches.cpu;
          if (cpu && usage.cpuPercent >= cpu.percent) {
            busySince ??= now;
            if (!busyReported && now - busySince >= cpu.forMs) {
              busyReported = true;
              this.watchAlert(
                'cpu',
                'alert',
                `CPU at ${Math.round(usage.cpuPercent)}% of a core for ${formatDuration(now - busySince)}`,
                {
                  cpu_percent: usage.cpuPercent,
                  limit_percent: cpu.percent,
                  for_s: Math.round(cpu.forMs / 1000),
                },
                {
                  signals: { cpu_percent: usage.cpuPercent, busy_s: (now - busySince) / 1000 },
                  thresholds: [
                    { path: 'process.cpu_percent', operator: '>=', value: cpu.percent },
                    { path: 'process.busy_s', operator: '>=', value: cpu.forMs / 1000 },
                  ],
                },
              );
            }
          } else {
            busySince = undefined;
            busyReported = false;
          }
        })
        .finally(() => {
          sampling = false;
        });
    }, o.sampleEveryMs ?? 1_000);
  }

  private repeated: RepeatedOutputDetector | undefined;

  private onLine(stream: 'stdout' | 'stderr', line: string): void {
    this.options.console.output(stream, line);
    this.silence?.activity(this.now());
    const repeated = this.repeated?.push(line);
    if (repeated)
      this.watchAlert(
        'repeated_output',
        'alert',
        `the same line came ${repeated.count} times in the last ${repeated.windowLines} lines: "${repeated.line}"`,
        { count: repeated.count, window_lines: repeated.windowLines },
        {
          signals: { repeated_lines: repeated.count, window_lines: repeated.windowLines },
          thresholds: [{ path: 'output.repeated_lines', operator: '>=', value: repeated.threshold }],
        },
      );
  }

  private watchAlert(
    watch: SupervisorReport['watch'],
    action: 'alert' | 'stop',
    reason: string,
    values: Record<string, string | number>,
    evidence: { signals: Record<string, number>; thresholds: Threshold[] },
  ): void {
    this.record({ kind: 'watch', watch, action, reason, values });
    this.last = reason;
    this.notice(`${action === 'stop' ? 'stopping the job' : 'alert'}: ${reason}`);
    this.report({
      watch,
      action: action === 'stop' ? 'stop_job' : 'alert',
      reason,
      version: this.watchesVersion,
      ...evidence,
      ...(this.key ? { keyId: this.key.id } : {}),
      ...(this.attempt ? { attempt: this.attempt.number, pid: this.attempt.pid } : {}),
      command: this.commandText.slice(0, 2000),
      at: new Date(this.now()).toISOString(),
    });
  }

  /**
   * Sends an intervention of the supervisor's own to the platform, which records it with the
   * policies' (the audit trail): the action is taken at once, its record follows.
   */
  private report(report: SupervisorReport): void {
    this.reports = this.reports.then(() => this.send(report));
  }

  private async send(report: SupervisorReport): Promise<void> {
    if (this.reportsUnsupported) return;
    await this.options.api.reportIntervention(this.options.job, report).then(
      () => {},
      (error: unknown) => {
        if (error instanceof PlatformApiError && error.missingEndpoint) {
          this.reportsUnsupported = true;
          this.record({
            kind: 'note',
            text: 'this platform does not record supervisor interventions (POST /api/v1/jobs/{job}/interventions): they are in this timeline only',
          });
          return;
        }
        this.record({
          kind: 'note',
          text: `the ${report.watch} ${report.action} could not be recorded on the platform: ${(error as Error).message}`,
        });
      },
    );
  }

  private onExchange(exchange: ProxyExchange): void {
    this.requests++;
    this.silence?.activity(this.now());
    if (exchange.tokens) this.tokens += exchange.tokens;
    if (exchange.status === 502 && exchange.error?.code === 'gateway_unreachable') {
      this.record({ kind: 'note', text: exchange.error.message });
      return;
    }
    if (exchange.status < 400) return;
    if (exchange.error?.code === 'policy_blocked' || exchange.status === 401 || exchange.status === 403) {
      this.refused++;
      const finding = exchange.error
        ? findingOfRefusal(exchange.error.message, exchange.decisionId)
        : undefined;
      if (finding) this.observe({ kind: 'finding', finding, at: this.now() });
      // The authoritative record (stop, values) is the platform's: look now.
      this.watch?.poke();
    }
  }

  private observe(observation: JobObservation): void {
    switch (observation.kind) {
      case 'finding':
        this.onFinding(observation.finding, observation.at);
        return;
      case 'stopped': {
        const stop = observation.stop;
        if (stop.decisionId && this.handledStops.has(stop.decisionId)) return;
        const finding = findingOfStop(stop);
        if (finding) {
          this.onFinding(finding, observation.at);
          return;
        }
        // An admin's stop (no decision): a person decided; no restart.
        const key = `admin:${stop.actor}:${stop.reason}`;
        if (this.handledStops.has(key)) return;
        this.handledStops.add(key);
        this.finalStop = 'admin';
        this.wakeRestartWait?.();
        this.record({ kind: 'note', text: `the job was stopped by ${stop.actor}: ${stop.reason}` });
        this.stopAttempt('admin', `stopped by ${stop.actor}: ${stop.reason}`);
        return;
      }
      case 'signals': {
        const seen = Object.fromEntries(Object.entries(observation.signals).filter(([, v]) => v !== 0));
        for (const entry of this.findings.values())
          if (
            entry.event.kind === 'decision' &&
            !entry.event.finding.signals &&
            !entry.event.finding.observed
          )
            entry.event = { kind: 'decision', finding: { ...entry.event.finding, observed: seen } };
        return;
      }
      case 'limited':
        this.record({ kind: 'note', text: observation.what });
        return;
    }
  }

  private onFinding(found: PolicyFinding, at: number | undefined): void {
    // A refusal message names a version by its first 12 characters only.
    const bound = this.key?.policy;
    const finding =
      bound && found.version.length >= 12 && bound.startsWith(found.version) && !found.jobPolicy
        ? { ...found, jobPolicy: true }
        : found;
    const id = `${finding.decisionId}/${finding.policy}`;
    const existing = this.findings.get(id);
    if (existing) {
      // The same decision seen again (a poll, the bus, the refused request): keep the most telling version.
      if (existing.event.kind === 'decision' && richer(finding, existing.event.finding))
        existing.event = { kind: 'decision', finding };
    } else {
      const entry = this.record({ kind: 'decision', finding }, at);
      this.findings.set(id, entry);
      if (!finding.signals) this.watch?.explain?.(finding.decisionId);
      if (finding.enforced) this.enforced++;
      else this.flagged++;
      this.last = `${findingVerb(finding)} (${finding.policy}/${finding.rule ?? '-'})`;
      this.noticeFinding(finding);
    }
    if (!finding.enforced) return;
    if (finding.action === 'stop_job') {
      if (this.handledStops.has(finding.decisionId)) return;
      this.handledStops.add(finding.decisionId);
      this.stopAttempt(
        'policy',
        `policy "${finding.policy}" stopped the job (rule "${finding.rule ?? '-'}")`,
      );
    } else if (finding.action === 'suspend_key') {
      this.keySuspended = true;
      this.finalStop = 'key_suspended';
      this.stopAttempt(
        'key_suspended',
        `policy "${finding.policy}" suspended the job's key (rule "${finding.rule ?? '-'}")`,
      );
    }
  }

  /** One notice per kind of finding every few seconds, so a throttle on every request does not flood the terminal. */
  private noticeFinding(f: PolicyFinding): void {
    const kind = `${f.policy}/${f.version}/${f.rule}/${f.action}/${f.enforced}`;
    const now = this.now();
    const seen = this.noticedAt.get(kind);
    if (seen && now - seen.at < FINDING_NOTICE_QUIET_MS && !(f.enforced && f.action === 'stop_job')) {
      seen.suppressed++;
      return;
    }
    const again = seen?.suppressed ? ` (and ${seen.suppressed} more like it before)` : '';
    this.noticedAt.set(kind, { at: now, suppressed: 0 });
    const values = formatValues(f);
    const head = f.enforced ? (ENFORCED_HEAD[f.action] ?? f.action.toUpperCase()) : `FLAGGED (${f.mode})`;
    const verb = f.enforced ? (f.detail ? ` (${f.detail})` : '') : `, ${findingVerb(f)}`;
    this.notice(`${head}${verb}: ${findingSource(f)}: ${f.reason}${values ? ` [${values}]` : ''}${again}`);
  }

  /** SIGTERM (or the user's signal) to the job's process group, then SIGKILL after the grace period. */
  private stopAttempt(by: StopOrigin, why: string, signal: NodeJS.Signals = 'SIGTERM'): void {
    const attempt = this.attempt;
    if (!attempt || attempt.stop) return;
    attempt.stop = { by, at: this.now(), signal };
    this.state = 'stopping';
    signalGroup(attempt, signal);
    this.record({ kind: 'signal', signal, pid: attempt.pid, why });
    if (by !== 'interrupt') this.notice(`${signal} sent to the job: ${why}`);
    const graceMs = this.options.graceMs;
    attempt.killTimer = setTimeout(() => {
      if (this.attempt !== attempt) return;
      signalGroup(attempt, 'SIGKILL');
      const text = `still running ${formatDuration(graceMs)} after ${signal} (--grace-seconds ${graceMs / 1000})`;
      this.record({ kind: 'signal', signal: 'SIGKILL', pid: attempt.pid, why: text });
      this.notice(`SIGKILL sent to the job: ${text}`);
    }, graceMs);
  }

  private record(event: TimelineEvent, at?: number): TimelineEntry {
    const now = this.now();
    // A platform's timestamp is used when it is plausible (same clock in-process, close enough remotely).
    const when = at !== undefined && at >= this.startedAt - 1_000 && at <= now + 1_000 ? at : now;
    const entry: TimelineEntry = { at: Math.max(0, when - this.startedAt), event };
    this.entries.push(entry);
    this.options.onEntry?.(entry);
    return entry;
  }

  private notice(text: string): void {
    this.options.console.notice(text);
  }

  private drawStatus(): void {
    const attempt = this.attempt;
    this.options.console.status({
      job: this.options.job,
      attempt: this.attemptNumber,
      state: this.state,
      elapsedMs: this.now() - this.startedAt,
      ...(attempt ? { pid: attempt.pid } : {}),
      ...(this.usage ? { usage: this.usage } : {}),
      requests: this.requests,
      refused: this.refused,
      tokens: this.tokens,
      flagged: this.flagged,
      enforced: this.enforced,
      ...(this.last ? { last: this.last } : {}),
    });
  }
}

/** A finding with values beats one without (an intervention event over a refusal message or a stop record). */
function richer(candidate: PolicyFinding, current: PolicyFinding): boolean {
  const score = (f: PolicyFinding): number =>
    (f.signals ? 2 : 0) + (f.thresholds ? 2 : 0) + (f.detail ? 1 : 0) + (f.version.length > 12 ? 1 : 0);
  return score(candidate) > score(current);
}

function finalWhy(origin: StopOrigin): string {
  return origin === 'interrupt'
    ? 'interrupted by the user'
    : origin === 'admin'
      ? 'an admin stopped the job'
      : "a policy suspended the job's key";
}

function exitWhy(end: AttemptEnd, why: string): string {
  switch (end.kind) {
    case 'exited':
      return `the job's own exit code (${why})`;
    case 'signaled':
      return `the job was killed by ${end.signal}, reported as 128+N (${why})`;
    case 'stopped':
      return end.by === 'interrupt'
        ? `interrupted (exit ${EXIT_CODES.interrupted})`
        : `FlowLoom stopped the job (exit ${EXIT_CODES.stopped}): ${why}`;
    case 'spawn_failed':
      return end.message;
  }
}

function signalGroup(attempt: Attempt, signal: NodeJS.Signals): void {
  try {
    process.kill(-attempt.pid, signal);
  } catch {
    try {
      attempt.child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

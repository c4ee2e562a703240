import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventBus } from '@flowloom/bus';
import { loadConfig } from '@flowloom/config';
import { startGateway } from '@flowloom/gateway';
import { BusJobWatcher } from '../run/bus-job-watcher.js';
import { DEFAULT_RESTART_RULE } from '../run/outcome.js';
import { PlatformApi } from '../run/platform-api.js';
import type { StatusSnapshot, SupervisorConsole } from '../run/status-line.js';
import { type SupervisionResult, Supervisor } from '../run/supervisor.js';
import { formatTimeline, type PolicyFinding, shortVersion } from '../run/timeline.js';
import { type CompiledDemoPolicy, compileDemoPolicy, DemoPolicySource, RUNAWAY_GUARD } from './policy.js';

/** The platform of the demo, in this process, on free ports and a throwaway data folder. */
export interface DemoPlatform {
  url: string;
  adminKey: string;
  dataDir: string;
  bus: EventBus;
  policies: DemoPolicySource;
  /** Publishes every pending event now. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function startDemoPlatform(): Promise<DemoPlatform> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flowloom-demo-'));
  const adminKey = `flk_demo_${randomBytes(24).toString('base64url')}`;
  const policies = new DemoPolicySource();
  try {
    // An empty environment and a folder without flowloom.yaml: the user's settings and provider keys
    // play no part; only the offline `local` provider serves.
    const config = loadConfig({
      env: {},
      cwd: dataDir,
      overrides: { host: '127.0.0.1', httpPort: 0, grpcPort: 0, logLevel: 'silent', adminKey, dataDir },
    });
    const gateway = await startGateway({ config, env: {}, policySource: policies });
    return {
      url: gateway.httpUrl,
      adminKey,
      dataDir,
      bus: gateway.bus,
      policies,
      flush: async () => {
        await gateway.flushOutbox();
      },
      close: async () => {
        await gateway.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

export interface DemoWriter {
  out(text: string): void;
}

/** The agent's lines and FlowLoom's notices, indented under the step that runs them. */
class DemoConsole implements SupervisorConsole {
  constructor(private readonly write: DemoWriter) {}
  output(_stream: 'stdout' | 'stderr', line: string): void {
    this.write.out(`    │ ${line}`);
  }
  notice(text: string): void {
    this.write.out(`    ▸ flowloom: ${text}`);
  }
  status(_snapshot: StatusSnapshot): void {}
  close(): void {}
}

export const AGENT = fileURLToPath(new URL('./agent.mjs', import.meta.url));

export interface DemoOptions {
  /** The agent's pause between steps. */
  pauseMs?: number;
  now?: () => number;
}

interface Phase {
  title: string;
  result: SupervisionResult;
}

function findings(result: SupervisionResult): PolicyFinding[] {
  return result.entries.flatMap((e) => (e.event.kind === 'decision' ? [e.event.finding] : []));
}

/** Checks that the story happened as told; each problem is a sentence. */
export function checkStory(
  shadow: SupervisionResult,
  enforce: SupervisionResult,
): {
  problems: string[];
  summary: string[];
} {
  const problems: string[] = [];
  const summary: string[] = [];
  const flagged = findings(shadow).filter((f) => !f.enforced && f.action === 'stop_job');
  const shadowEnforced = findings(shadow).filter((f) => f.enforced);
  if (flagged.length === 0) problems.push('shadow: no finding flagged the loop');
  if (shadowEnforced.length > 0) problems.push('shadow: a policy intervened although it was in shadow mode');
  if (shadow.entries.some((e) => e.event.kind === 'signal'))
    problems.push('shadow: the job was signalled although nothing was enforced');
  summary.push(
    `shadow:  the loop was flagged ${flagged.length} times ("would stop_job") and nothing was changed: the agent looped until its own cap (exit ${shadow.exitCode})`,
  );

  const stop = findings(enforce).find((f) => f.enforced && f.action === 'stop_job');
  const signal = enforce.entries.find((e) => e.event.kind === 'signal');
  const restarts = enforce.entries.filter((e) => e.event.kind === 'restart').length;
  const throttled = findings(enforce).filter((f) => f.enforced && f.action === 'throttle');
  if (!stop) problems.push('enforce: the loop was not stopped by a policy');
  if (signal?.event.kind !== 'signal') problems.push('enforce: the job was not signalled');
  if (restarts !== 1) problems.push(`enforce: expected one restart, saw ${restarts}`);
  if (throttled.length === 0) problems.push('enforce: the restarted job was not throttled');
  if (enforce.exitCode !== 0) problems.push(`enforce: the job did not recover (exit ${enforce.exitCode})`);
  if (stop)
    summary.push(
      `enforce: policy "${stop.policy}" (${shortVersion(stop.version)}, rule "${stop.rule}") stopped the loop; ${signal?.event.kind === 'signal' ? signal.event.signal : 'no signal'} went to the agent, which saved a checkpoint`,
    );
  summary.push(
    `recover: restarted once (--max-restarts 1); ${throttled.length} requests were throttled (${throttled[0]?.detail ?? '-'}) and the job finished with exit ${enforce.exitCode}`,
  );
  return { problems, summary };
}

const rule = (r: (typeof RUNAWAY_GUARD.rules)[number]): string =>
  `${r.id}: ${r.condition} → ${typeof r.action === 'string' ? r.action : `${r.action.type} ${r.action.delayMs} ms`}`;

/**
 * `flowloom demo`: a new user's first minute, offline. Starts the platform in this process, runs a
 * scripted agent under `flowloom run` supervision while its loop is only flagged (shadow), promotes the
 * policy to enforce, runs it again: stopped, restarted, recovering under a throttle. Prints every
 * timeline. Returns the exit code: 0 when the story happened as told.
 */
export async function runDemo(write: DemoWriter, options: DemoOptions = {}): Promise<number> {
  const now = options.now ?? Date.now;
  const started = now();
  const policy: CompiledDemoPolicy = compileDemoPolicy();
  write.out('FlowLoom demo: the first minute, offline. No provider key and no network: the built-in');
  write.out('`local` provider answers. A scripted agent drafts release notes and falls into a loop.');
  write.out('');
  write.out('▶ Starting FlowLoom in this process …');
  const platform = await startDemoPlatform();
  const phases: Phase[] = [];
  try {
    write.out(
      `  up in ${((now() - started) / 1000).toFixed(1)} s: HTTP ${platform.url}, data in ${platform.dataDir} (deleted at the end)`,
    );
    const watcher = new BusJobWatcher(platform.bus, 'flowloom-demo');
    await watcher.ready();
    const api = new PlatformApi(platform.url, platform.adminKey);

    platform.policies.shadow(policy);
    write.out('');
    write.out(
      `▶ Policy "${policy.name}" version ${shortVersion(policy.version)} is in SHADOW mode: evaluated and recorded on every request, never enforced.`,
    );
    for (const r of RUNAWAY_GUARD.rules) write.out(`    ${rule(r)}`);

    const supervise = async (title: string, command: string, maxRestarts: number): Promise<Phase> => {
      write.out('');
      write.out(`▶ ${title}`);
      write.out(`  $ ${command}`);
      const supervisor = new Supervisor({
        job: `release-notes-${phases.length + 1}`,
        command: process.execPath,
        args: [AGENT],
        label: 'node agent.mjs',
        gatewayUrl: platform.url,
        api,
        watcher,
        console: new DemoConsole(write),
        restart: { ...DEFAULT_RESTART_RULE, maxRestarts, baseDelayMs: 500 },
        graceMs: 3_000,
        watches: { repeatedOutput: false },
        env: { ...process.env, DEMO_AGENT_PAUSE_MS: String(options.pauseMs ?? 60) },
        settle: () => platform.flush(),
      });
      const result = await supervisor.run();
      write.out('');
      for (const line of formatTimeline(result.entries, {
        job: result.job,
        command: result.command,
        durationMs: result.durationMs,
      }))
        write.out(line);
      const phase = { title, result };
      phases.push(phase);
      return phase;
    };

    const shadow = await supervise(
      'Run 1 of 2, policy in shadow mode',
      'flowloom run --name release-notes -- node agent.mjs',
      0,
    );

    platform.policies.enforce(policy);
    write.out('');
    write.out(
      `▶ Promoting "${policy.name}" ${shortVersion(policy.version)} from shadow to ENFORCE (in production: flowloom policy promote, approved by a second person).`,
    );

    const enforce = await supervise(
      'Run 2 of 2, policy enforced',
      'flowloom run --name release-notes --max-restarts 1 --grace-seconds 3 -- node agent.mjs',
      1,
    );

    const { problems, summary } = checkStory(shadow.result, enforce.result);
    write.out('');
    write.out('▶ What happened');
    for (const line of summary) write.out(`  ${problems.length === 0 ? '✔' : '•'} ${line}`);
    write.out(
      '  Every decision above is recorded as an event (dev.flowloom.policy.decision.v1, .intervention.v1) with its policy version, rule and the values it read.',
    );
    for (const problem of problems) write.out(`  ✖ ${problem}`);
    write.out('');
    write.out(
      `Demo finished in ${((now() - started) / 1000).toFixed(1)} s. Next: npm start, then flowloom run -- <your agent>.`,
    );
    return problems.length === 0 ? 0 : 1;
  } finally {
    await platform.close();
  }
}

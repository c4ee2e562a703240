import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InProcessBus } from '@flowloom/bus';
import { loadConfig } from '@flowloom/config';
import { policyApiDocument, startGateway } from '@flowloom/gateway';
import { startPolicyService } from '@flowloom/policy';
import { openDb } from '@flowloom/store';
import { ApiJobWatcher } from '../run/api-job-watcher.js';
import { DEFAULT_RESTART_RULE } from '../run/outcome.js';
import { PlatformApi } from '../run/platform-api.js';
import type { StatusSnapshot, SupervisorConsole } from '../run/status-line.js';
import { type SupervisionResult, Supervisor } from '../run/supervisor.js';
import { formatTimeline, type PolicyFinding, shortVersion } from '../run/timeline.js';
import { describeRule, RUNAWAY_GUARD } from './policy.js';

/** The platform of the demo, in this process, on free ports and a throwaway data folder. */
export interface DemoPlatform {
  url: string;
  adminKey: string;
  dataDir: string;
  /** Publishes every pending event now (decisions reach the policy service's store). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The gateway and the policy service in this process, as `flowloom up` composes them, on free ports
 * with a throwaway data folder.
 */
export async function startDemoPlatform(): Promise<DemoPlatform> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flowloom-demo-'));
  const adminKey = `flk_demo_${randomBytes(24).toString('base64url')}`;
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    // An empty environment and a folder without flowloom.yaml: the user's settings and provider keys
    // play no part; only the offline `local` provider serves.
    const config = loadConfig({
      env: {},
      cwd: dataDir,
      overrides: { host: '127.0.0.1', httpPort: 0, grpcPort: 0, logLevel: 'silent', adminKey, dataDir },
    });
    const db = await openDb({ dataDir: join(dataDir, 'db') });
    cleanups.push(() => db.close());
    const bus = new InProcessBus();
    cleanups.push(() => bus.close());
    const policy = await startPolicyService({ config, db, bus });
    cleanups.push(() => policy.close());
    const gateway = await startGateway({
      config,
      env: {},
      db,
      bus,
      policySource: policy.source,
      plugins: [policy.http],
      apiDocuments: [policyApiDocument],
    });
    cleanups.push(() => gateway.close());
    return {
      url: gateway.httpUrl,
      adminKey,
      dataDir,
      flush: async () => {
        await gateway.flushOutbox();
      },
      close,
    };
  } catch (error) {
    await close();
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

interface PolicyStatus {
  policies: Array<{ name: string; stable?: string; candidate?: { version: string; mode: string } }>;
}

/** Waits until the gateway enforces what the policy service deployed (a bundle arrives within a second). */
async function inForce(
  api: PlatformApi,
  check: (p: PolicyStatus['policies'][number] | undefined) => boolean,
): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const status = await api.request<PolicyStatus>('GET', '/api/v1/gateway/policy');
    if (check(status.policies.find((p) => p.name === RUNAWAY_GUARD.name))) return;
    if (Date.now() > until) throw new Error('the gateway did not receive the policy bundle within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** An admin key of a named person (policy changes are attributed, and approval needs someone else). */
async function person(admin: PlatformApi, owner: string): Promise<PlatformApi> {
  const created = await admin.request<{ key: string }>('POST', '/api/v1/keys', {
    name: `demo ${owner}`,
    owner,
    role: 'admin',
  });
  return new PlatformApi(admin.baseUrl, created.key);
}

/**
 * `flowloom demo`: a new user's first minute, offline. Starts the gateway and the policy service in
 * this process; Alice pushes a policy and puts it in shadow mode; a scripted agent runs under
 * `flowloom run` supervision and falls into a loop, which is only flagged; Alice asks to enforce the
 * policy and Bob approves; the agent runs again: stopped, restarted, recovering under a throttle.
 * Prints every timeline. Returns the exit code: 0 when the story happened as told.
 */
export async function runDemo(write: DemoWriter, options: DemoOptions = {}): Promise<number> {
  const now = options.now ?? Date.now;
  const started = now();
  write.out('FlowLoom demo: the first minute, offline. No provider key and no network: the built-in');
  write.out('`local` provider answers. A scripted agent drafts release notes and falls into a loop.');
  write.out('');
  write.out('▶ Starting FlowLoom (gateway and policy service) in this process …');
  const platform = await startDemoPlatform();
  try {
    write.out(
      `  up in ${((now() - started) / 1000).toFixed(1)} s: HTTP ${platform.url}, data in ${platform.dataDir} (deleted at the end)`,
    );
    const admin = new PlatformApi(platform.url, platform.adminKey);
    const [alice, bob] = await Promise.all([
      person(admin, 'alice@example.com'),
      person(admin, 'bob@example.com'),
    ]);

    const pushed = await alice.request<{ version: string }>('POST', '/api/v1/policies', {
      document: RUNAWAY_GUARD,
      message: 'Stop agents that loop; slow down bursts',
    });
    const version = pushed.version;
    await alice.request('POST', `/api/v1/policies/${RUNAWAY_GUARD.name}/promotions`, {
      version,
      mode: 'shadow',
    });
    await inForce(admin, (p) => p?.candidate?.version === version && p.candidate.mode === 'shadow');
    write.out('');
    write.out(
      `▶ alice@example.com pushes policy "${RUNAWAY_GUARD.name}" (version ${shortVersion(version)}) in SHADOW mode: evaluated and recorded on every request, never enforced.`,
    );
    write.out(
      `  $ flowloom policy push runaway-guard.yaml && flowloom policy promote ${RUNAWAY_GUARD.name} --mode shadow`,
    );
    for (const r of RUNAWAY_GUARD.rules) write.out(`    ${describeRule(r)}`);

    // The same watcher `flowloom run` uses: the admin API, polled briskly for a short demo.
    const watcher = new ApiJobWatcher(admin, { intervalMs: 200 });
    let runs = 0;
    const supervise = async (
      title: string,
      command: string,
      maxRestarts: number,
    ): Promise<SupervisionResult> => {
      runs++;
      write.out('');
      write.out(`▶ ${title}`);
      write.out(`  $ ${command}`);
      const result = await new Supervisor({
        job: `release-notes-${runs}`,
        command: process.execPath,
        args: [AGENT],
        label: 'node agent.mjs',
        gatewayUrl: platform.url,
        api: admin,
        watcher,
        console: new DemoConsole(write),
        restart: { ...DEFAULT_RESTART_RULE, maxRestarts, baseDelayMs: 500 },
        graceMs: 3_000,
        watches: { repeatedOutput: false },
        env: { ...process.env, DEMO_AGENT_PAUSE_MS: String(options.pauseMs ?? 60) },
        settle: () => platform.flush(),
      }).run();
      write.out('');
      for (const line of formatTimeline(result.entries, {
        job: result.job,
        command: result.command,
        durationMs: result.durationMs,
      }))
        write.out(line);
      return result;
    };

    const shadow = await supervise(
      'Run 1 of 2, policy in shadow mode',
      'flowloom run --name release-notes -- node agent.mjs',
      0,
    );

    const requested = await alice.request<{ promotion: { id: string } }>(
      'POST',
      `/api/v1/policies/${RUNAWAY_GUARD.name}/promotions`,
      { version, mode: 'enforce' },
    );
    await bob.request('POST', `/api/v1/promotions/${requested.promotion.id}/approve`, {});
    await inForce(admin, (p) => p?.stable === version);
    write.out('');
    write.out(
      `▶ alice@example.com asks to ENFORCE "${RUNAWAY_GUARD.name}" ${shortVersion(version)}; bob@example.com approves (the author cannot approve her own change).`,
    );
    write.out(
      `  $ flowloom policy promote ${RUNAWAY_GUARD.name} --mode enforce    # alice\n  $ flowloom policy approve ${requested.promotion.id}    # bob`,
    );

    const enforce = await supervise(
      'Run 2 of 2, policy enforced',
      'flowloom run --name release-notes --max-restarts 1 --grace-seconds 3 -- node agent.mjs',
      1,
    );

    const { problems, summary } = checkStory(shadow, enforce);
    write.out('');
    write.out('▶ What happened');
    for (const line of summary) write.out(`  ${problems.length === 0 ? '✔' : '•'} ${line}`);
    write.out(
      `  Every decision is on record with its policy version, rule and the values it read: GET /api/v1/decisions/{id}, GET /api/v1/jobs/release-notes-2/interventions.`,
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

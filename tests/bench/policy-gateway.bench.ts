import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Target, throughput } from './load.js';
import { adminCall, type Child, freePort, startChild } from './processes.js';

// The policy gate inside the gateway, measured through `flowloom up` processes:
// - throughput with a 100-rule policy (runaway signals on) next to the same gateway without one;
// - decision latency of those 100 rules as each decision records it (evaluationMicros);
// - runaway detection: requests and time from a threshold being crossed to the intervention, for a
//   looping agent and a spend spike;
// - interventions on a benign trace (target: none).

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN_KEY = 'flk_bench-policy-admin-0123456789abcdefghijk';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

const LOOP_THRESHOLD = 4;
const SPEND_THRESHOLD = 1.0; // $ per minute

/** 100 rules: 90 ordinary ones (projects, models, headers, two regexes) and 10 on runaway signals. */
export function benchPolicy(): string {
  const rules: string[] = [];
  for (let i = 0; i < 90; i++) {
    const kind = i % 6;
    const condition =
      kind === 0
        ? `request.project == "proj-${i}" && request.max_tokens > ${1000 + i}.0`
        : kind === 1
          ? `request.model.startsWith("legacy-${i}") || caller.team == "team-${i}"`
          : kind === 2
            ? `"x-tier-${i}" in request.headers && request.estimated_tokens > ${5000 + i}.0`
            : kind === 3
              ? `request.cost > ${50 + i}.0 && request.project != ""`
              : kind === 4
                ? i < 10
                  ? `request.job.matches("^batch-${i}-[0-9]+$")`
                  : `request.session == "sess-${i}" && request.stream`
                : `caller.owner == "owner-${i}" && request.tools_count > ${i}.0`;
    const action =
      kind === 0
        ? 'block'
        : kind === 1
          ? '{ type: throttle, delayMs: 100 }'
          : kind === 2
            ? '{ type: alert, channel: ops }'
            : kind === 3
              ? '{ type: cap_max_tokens, value: 256 }'
              : kind === 4
                ? '{ type: reroute, model: gpt-4o-mini }'
                : 'block';
    rules.push(
      `  - id: rule-${i}\n    priority: ${i % 7}\n    condition: '${condition}'\n    action: ${action}`,
    );
  }
  const runaway: Array<[string, string, string]> = [
    ['agent-loop', `request.job != "" && signals.repeated_prompts >= ${LOOP_THRESHOLD}`, 'stop_job'],
    ['spend-spike', `request.job != "" && signals.spend_per_minute > ${SPEND_THRESHOLD}`, 'block'],
    [
      'error-storm',
      'signals.error_rate > 0.5 && signals.requests_per_minute > 20.0',
      '{ type: throttle, delayMs: 200 }',
    ],
    ['token-flood', 'request.job != "" && signals.tokens_per_minute > 5000000.0', 'block'],
    [
      'off-baseline',
      'request.job != "" && signals.baseline_ratio > 50.0',
      '{ type: alert, channel: finops }',
    ],
    ['deep-agent', 'signals.tool_call_depth > 40.0', 'stop_job'],
    ['long-job', 'signals.job_duration_s > 86400.0', '{ type: alert, channel: ops }'],
    [
      'hammering',
      'request.job != "" && signals.requests_per_minute > 100000.0',
      '{ type: throttle, delayMs: 500 }',
    ],
    ['near-budget', 'budget.remaining < 0.01', 'block'],
    ['night-agents', 'request.job.startsWith("night-") && time.hour < 5.0', 'block'],
  ];
  for (const [id, condition, action] of runaway)
    rules.push(`  - id: ${id}\n    priority: 10\n    condition: '${condition}'\n    action: ${action}`);
  return `name: bench-guard\ndescription: 100 rules\nrules:\n${rules.join('\n')}\n`;
}

const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

interface Gateway {
  child: Child;
  base: string;
  dataDir: string;
}

/**
 * `flowloom up` (the whole platform: gateway, policy service consuming every decision, audit), or
 * with `gatewayOnly` the gateway alone (this file as its entry, a policy file enforced by the
 * gateway itself): the inline gate and its decision events without the consumers.
 */
async function startFlowloom(
  name: string,
  upstreamBase: string,
  configFile: string | undefined,
  policyFile: string | undefined,
  gatewayOnly = false,
): Promise<Gateway> {
  const dataDir = mkdtempSync(join(tmpdir(), `flowloom-bench-${name}-`));
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const entry = gatewayOnly
    ? ['--import', 'tsx', fileURLToPath(import.meta.url), GATEWAY_ONLY]
    : [join(ROOT, 'services/flowloom/bin/flowloom.js'), 'up'];
  const child = await startChild(
    'node',
    entry,
    {
      FLOWLOOM_HTTP_PORT: String(httpPort),
      FLOWLOOM_GRPC_PORT: String(grpcPort),
      FLOWLOOM_DATA_DIR: dataDir,
      FLOWLOOM_ADMIN_KEY: ADMIN_KEY,
      FLOWLOOM_LOG_LEVEL: 'warn',
      FLOWLOOM_CONFIG: configFile,
      FLOWLOOM_POLICY_FILE: policyFile,
      OPENAI_API_KEY: 'sk-bench',
      OPENAI_BASE_URL: upstreamBase,
    },
    /FlowLoom is up/,
    180_000,
  );
  return { child, base: `http://127.0.0.1:${httpPort}`, dataDir };
}

const GATEWAY_ONLY = '--gateway-only';

async function call(
  base: string,
  key: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; at: number }> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, at: performance.now() };
}

const admin = <T>(base: string, method: string, path: string, body?: unknown): Promise<T> =>
  adminCall<T>(base, ADMIN_KEY, method, path, body);

const local = (text: string, script: Record<string, unknown> = {}) => ({
  model: 'flowloom-local',
  messages: [{ role: 'user', content: `${text}\nflowloom-local: ${JSON.stringify(script)}` }],
});

const WORDS = (
  'invoice parser migration cluster latency summary customer refund schema report deploy budget release ' +
  'incident contract review forecast backlog ticket audit pipeline vendor payroll quota dashboard onboarding ' +
  'churn roadmap warehouse shipment pricing newsletter campaign benchmark firmware sensor license renewal'
).split(' ');
const TEMPLATES = [
  (w: string[]) => `Explain how the ${w[0]} relates to the ${w[1]} and suggest one change to the ${w[2]}.`,
  (w: string[]) =>
    `Draft a short note to the ${w[0]} team about the ${w[1]} delay and its effect on ${w[2]}.`,
  (w: string[]) => `List three risks of moving the ${w[0]} into the ${w[1]} without touching the ${w[2]}.`,
  (w: string[]) => `Compare ${w[0]} and ${w[1]} for a small company; which matters more for ${w[2]}?`,
  (w: string[]) => `Write a SQL query that joins ${w[0]} with ${w[1]} and groups by ${w[2]}.`,
];
const benign = (i: number) =>
  TEMPLATES[i % TEMPLATES.length]!([0, 1, 2].map((n) => WORDS[(i * 3 + n) % WORDS.length]!));

/** Runs the policy gateway benchmark; `seconds` per throughput round (two rounds per gateway, alternated). */
export async function runPolicyGatewayBench(
  log: (line: string) => void = (line) => process.stderr.write(`… ${line}\n`),
  seconds = Number(process.env.BENCH_SECONDS ?? 10),
): Promise<Figure[]> {
  const children: Child[] = [];
  const dirs: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'flowloom-bench-policy-'));
  dirs.push(work);
  try {
    const policyFile = join(work, 'bench-guard.yaml');
    writeFileSync(policyFile, benchPolicy());
    // flowloom-local is free; a price makes the spend spike measurable ($1 per 1,000 tokens).
    const configFile = join(work, 'flowloom.yaml');
    writeFileSync(
      configFile,
      'prices:\n  flowloom-local: { input: 1000, output: 1000 }\nrouting:\n  maxAttempts: 1\n',
    );

    const upstreamPort = await freePort();
    log(`starting the mock OpenAI upstream on ${upstreamPort}…`);
    children.push(
      await startChild(
        'node',
        ['--import', 'tsx', join(ROOT, 'tests/bench/mock-upstream.ts'), String(upstreamPort)],
        {},
        /listening/,
      ),
    );
    const upstreamBase = `http://127.0.0.1:${upstreamPort}/v1`;
    log('starting the gateway alone and the whole platform, each without and with the 100-rule policy…');
    const started: Gateway[] = [];
    const start = async (name: string, policy: boolean, gatewayOnly: boolean) => {
      const g = await startFlowloom(
        name,
        upstreamBase,
        configFile,
        policy ? policyFile : undefined,
        gatewayOnly,
      );
      children.push(g.child);
      dirs.push(g.dataDir);
      started.push(g);
      return g;
    };
    const gwPlain = await start('gateway-plain', false, true);
    const gwPolicy = await start('gateway-policy', true, true);
    const plain = await start('up-plain', false, false);
    const guarded = await start('up-policy', true, false);

    const keyOf = async (g: Gateway) =>
      (await admin<{ key: string }>(g.base, 'POST', '/api/v1/keys', { name: 'bench', project: 'bench' })).key;
    const keys = new Map<Gateway, string>();
    for (const g of started) keys.set(g, await keyOf(g));
    const guardedKey = keys.get(guarded)!;
    const chat = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hello in five words.' }],
    });
    const target = (g: Gateway): Target => ({
      name: g.base,
      url: `${g.base}/v1/chat/completions`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.get(g)}` },
      body: chat,
    });
    for (const g of [gwPolicy, guarded]) {
      const check = await call(g.base, keys.get(g)!, JSON.parse(chat));
      if (check.status !== 200) throw new Error(`a policy gateway answered ${check.status}: ${check.text}`);
    }

    // Alternate rounds so that load from other work on the machine hits each alike.
    const figures: Figure[] = [];
    let non2xx = 0;
    for (const [label, without, withPolicy] of [
      ['gateway alone', gwPlain, gwPolicy],
      ['whole platform (flowloom up)', plain, guarded],
    ] as const) {
      const rps: [number[], number[]] = [[], []];
      const p99: [number[], number[]] = [[], []];
      for (let round = 0; round < 2; round++) {
        for (const [i, g] of [without, withPolicy].entries()) {
          log(
            `${label}, round ${round + 1}, 32 connections, ${seconds} s: ${i === 0 ? 'no policy' : '100-rule policy'}…`,
          );
          await throughput(target(g), 32, 2);
          const r = await throughput(target(g), 32, seconds);
          rps[i]!.push(r.rps);
          p99[i]!.push(r.p99Ms);
          non2xx += r.non2xx + r.errors;
        }
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      figures.push(
        {
          name: `${label}: throughput, no policy`,
          value: Math.round(mean(rps[0])),
          unit: 'req/s',
          note: `rounds ${rps[0].map(Math.round).join(', ')}; p99 ${p99[0].join(', ')} ms`,
        },
        {
          name: `${label}: throughput, 100-rule policy + signals`,
          value: Math.round(mean(rps[1])),
          unit: 'req/s',
          note: `rounds ${rps[1].map(Math.round).join(', ')}; p99 ${p99[1].join(', ')} ms`,
        },
        {
          name: `${label}: ratio with policy / without`,
          value: Number((mean(rps[1]) / mean(rps[0])).toFixed(3)),
          unit: '×',
          note: `load average ${loadavg()[0]?.toFixed(2)}; non-2xx/errors so far ${non2xx}`,
        },
      );
    }

    log('decision latency of the 100 rules, as recorded by the gateway…');
    await new Promise((r) => setTimeout(r, 1_000)); // decisions travel as events
    const { data } = await admin<{ data: Array<{ evaluationMicros: number; evaluations: unknown[] }> }>(
      guarded.base,
      'GET',
      '/api/v1/decisions?limit=1000',
    );
    const micros = data.map((d) => d.evaluationMicros).sort((a, b) => a - b);
    figures.push({
      name: 'decision latency in the gateway, 100 rules: p50',
      value: Number(percentile(micros, 50).toFixed(1)),
      unit: 'µs',
      note: `p99 ${percentile(micros, 99).toFixed(1)} µs over the last ${micros.length} decisions under load (target p99 ≤ 50 µs)`,
    });

    log('runaway detection: a looping agent, five times…');
    const loopRequests: number[] = [];
    const loopMs: number[] = [];
    for (let run = 0; run < 5; run++) {
      const job = `loop-${run}-${Date.now()}`;
      let crossedAt: number | undefined;
      for (let i = 1; i <= 12; i++) {
        const sent = performance.now();
        // The request whose prompt has LOOP_THRESHOLD identical ones before it crosses the threshold.
        if (i === LOOP_THRESHOLD + 1) crossedAt = sent;
        const r = await call(
          guarded.base,
          guardedKey,
          local('Check whether the build passed, then try again.'),
          {
            'x-flowloom-job': job,
          },
        );
        if (r.status === 403) {
          loopRequests.push(i - (LOOP_THRESHOLD + 1));
          loopMs.push(r.at - (crossedAt ?? r.at));
          break;
        }
      }
    }
    log('runaway detection: a spend spike, five times…');
    const spendRequests: number[] = [];
    const spendMs: number[] = [];
    for (let run = 0; run < 5; run++) {
      const job = `spender-${run}-${Date.now()}`;
      let spent = 0;
      let crossed: { index: number; at: number } | undefined;
      for (let i = 1; i <= 20; i++) {
        const expensive = i > 3;
        const r = await call(
          guarded.base,
          guardedKey,
          local(benign(1000 + run * 20 + i), { inputTokens: 20, outputTokens: expensive ? 250 : 5 }),
          { 'x-flowloom-job': job },
        );
        if (r.status === 403) {
          if (crossed) {
            spendRequests.push(i - crossed.index);
            spendMs.push(r.at - crossed.at);
          }
          break;
        }
        spent += expensive ? 0.27 : 0.025;
        if (!crossed && spent > SPEND_THRESHOLD) crossed = { index: i, at: r.at };
      }
    }
    const worst = (xs: number[]) => (xs.length === 0 ? Number.NaN : Math.max(...xs));
    figures.push(
      {
        name: 'detection, looping agent: requests after crossing',
        value: worst(loopRequests),
        unit: 'requests',
        note: `worst of ${loopRequests.length} runs (${loopRequests.join(', ')}); target ≤ 3`,
      },
      {
        name: 'detection, looping agent: time after crossing',
        value: Number(worst(loopMs).toFixed(1)),
        unit: 'ms',
        note: `worst of ${loopMs.length}; target ≤ 2000 ms`,
      },
      {
        name: 'detection, spend spike: requests after crossing',
        value: worst(spendRequests),
        unit: 'requests',
        note: `worst of ${spendRequests.length} runs (${spendRequests.join(', ')}); target ≤ 3`,
      },
      {
        name: 'detection, spend spike: time after crossing',
        value: Number(worst(spendMs).toFixed(1)),
        unit: 'ms',
        note: `worst of ${spendMs.length}; target ≤ 2000 ms`,
      },
    );

    log('a benign trace: 5 jobs × 40 varied requests, modest spend, a stray upstream error…');
    let refused = 0;
    let interventions = 0;
    const jobs = [0, 1, 2, 3, 4].map((j) => `benign-${j}-${Date.now()}`);
    for (let i = 0; i < 40; i++) {
      for (const [j, job] of jobs.entries()) {
        const stray = i === 20 && j === 2;
        const r = await call(
          guarded.base,
          guardedKey,
          local(benign(i * 5 + j), stray ? { error: { status: 503 } } : { inputTokens: 5, outputTokens: 1 }),
          { 'x-flowloom-job': job },
        );
        if (r.status === 403) refused++;
      }
    }
    await new Promise((r) => setTimeout(r, 1_000));
    for (const job of jobs) {
      const page = await admin<{ data: unknown[] }>(
        guarded.base,
        'GET',
        `/api/v1/jobs/${job}/interventions?limit=1000`,
      );
      interventions += page.data.length;
    }
    figures.push({
      name: 'interventions on a benign trace (200 requests)',
      value: interventions,
      unit: 'count',
      note: `${refused} refused; target 0`,
    });
    return figures;
  } finally {
    for (const child of children.reverse()) await child.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes(GATEWAY_ONLY)) {
    // The gateway alone, configured from the environment like `flowloom up`.
    const { loadConfig } = await import('@flowloom/config');
    const { startGateway } = await import('@flowloom/gateway');
    const gateway = await startGateway({ config: loadConfig({ env: process.env }), env: process.env });
    process.stdout.write(`FlowLoom is up: HTTP ${gateway.httpUrl} (gateway alone)\n`);
    process.once('SIGTERM', () => void gateway.close().then(() => process.exit(0)));
  } else {
    for (const f of await runPolicyGatewayBench())
      console.log(`${f.name.padEnd(56)} ${String(f.value).padStart(10)} ${f.unit.padEnd(8)} ${f.note ?? ''}`);
  }
}

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Child, freePort, startChild } from '../bench/processes.js';
import { runCli } from '../e2e/cli-support.js';
import { databaseActivity } from './engines.js';

export const CLI = join(
  fileURLToPath(new URL('../..', import.meta.url)),
  'services/flowloom/bin/flowloom.js',
);

/** A FlowLoom service in a process of its own that the test can kill and start again on the same ports. */
export class Service {
  private child: Child | undefined;
  /** How long the last start took, until the service said it was serving. */
  startSeconds = 0;

  constructor(
    readonly name: string,
    private readonly command: 'gateway' | 'audit' | 'policy',
    readonly env: Record<string, string>,
    readonly url: string,
  ) {}

  /** Fails with the service's output (and PostgreSQL's activity) when it is not serving in `timeoutMs`. */
  async start(timeoutMs = 120_000): Promise<void> {
    const began = Date.now();
    try {
      this.child = await startChild(
        'node',
        [CLI, 'serve', this.command],
        this.env,
        /FlowLoom (gateway|audit|policy):/,
        timeoutMs,
      );
    } catch (error) {
      throw await withDatabaseActivity(error, this.env.FLOWLOOM_DATABASE_URL);
    }
    this.startSeconds = (Date.now() - began) / 1000;
  }

  /** SIGKILL: no drain, no shutdown hooks. */
  async kill(): Promise<void> {
    const child = this.child?.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.child?.process;
    // A killed process has exited already: there is no exit to wait for.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await this.child?.stop();
  }

  output(): string {
    return this.child?.output() ?? '';
  }
}

async function withDatabaseActivity(error: unknown, url: string | undefined): Promise<Error> {
  const message = error instanceof Error ? error.message : String(error);
  return new Error(url ? `${message}\nPostgreSQL meanwhile:\n${await databaseActivity(url)}` : message);
}

/**
 * `flowloom migrate` on `env`'s database. It fails within `timeoutMs` with the command's output and
 * what PostgreSQL's sessions were waiting on, well inside a set-up hook's own timeout (which would
 * say nothing).
 */
export async function migrate(env: Record<string, string>, timeoutMs = 45_000): Promise<void> {
  const result = await runCli(['migrate'], { ...process.env, ...env }, timeoutMs).catch(
    async (error: unknown) => {
      throw await withDatabaseActivity(error, env.FLOWLOOM_DATABASE_URL);
    },
  );
  if (result.code !== 0)
    throw new Error(`flowloom migrate exited with ${result.code}:\n${result.stdout}\n${result.stderr}`);
}

/** The port settings of each service's HTTP and gRPC servers. */
const PORT_VARIABLES = {
  gateway: ['FLOWLOOM_HTTP_PORT', 'FLOWLOOM_GRPC_PORT'],
  policy: ['FLOWLOOM_HTTP_PORT', 'FLOWLOOM_GRPC_PORT'],
  audit: ['FLOWLOOM_AUDIT_HTTP_PORT', 'FLOWLOOM_AUDIT_GRPC_PORT'],
} as const;

/** A service (not started) on free ports, with a data folder `name` under `work`. */
export async function serviceOnFreePorts(
  name: string,
  command: 'gateway' | 'audit' | 'policy',
  env: Record<string, string>,
  work: string,
): Promise<Service> {
  const [http, grpc] = [await freePort(), await freePort()];
  const [httpVariable, grpcVariable] = PORT_VARIABLES[command];
  return new Service(
    name,
    command,
    {
      ...env,
      FLOWLOOM_DATA_DIR: join(work, name),
      [httpVariable]: String(http),
      [grpcVariable]: String(grpc),
    },
    `http://127.0.0.1:${http}`,
  );
}

/** The value of an unlabelled metric on a service's /metrics, if it is there. */
export async function metricOf(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/** Variables one service of the trio has on top of the shared ones (a login of its own, a policy file). */
export interface ServiceEnvs {
  gateway?: Record<string, string>;
  policy?: Record<string, string>;
  audit?: Record<string, string>;
}

/**
 * `serve policy`, `serve audit` and `serve gateway` (not started) on free ports with `env`, the
 * gateway reaching the policy service's bundle stream and forwarding the policy and audit admin APIs,
 * so that one URL serves everything as in `flowloom up`. `own` adds to (or overrides) `env` per service.
 */
export async function distributedServices(
  env: Record<string, string>,
  work: string,
  own: ServiceEnvs = {},
): Promise<{ gateway: Service; policy: Service; audit: Service }> {
  const policy = await serviceOnFreePorts('policy', 'policy', { ...env, ...own.policy }, work);
  const audit = await serviceOnFreePorts('audit', 'audit', { ...env, ...own.audit }, work);
  const gateway = await serviceOnFreePorts(
    'gateway',
    'gateway',
    {
      ...env,
      FLOWLOOM_POLICY_SERVICE_URL: `127.0.0.1:${policy.env.FLOWLOOM_GRPC_PORT}`,
      FLOWLOOM_POLICY_HTTP_URL: policy.url,
      FLOWLOOM_AUDIT_HTTP_URL: audit.url,
      ...own.gateway,
    },
    work,
  );
  return { gateway, policy, audit };
}

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Child, startChild } from '../bench/processes.js';

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
    private readonly env: Record<string, string>,
    readonly url: string,
  ) {}

  async start(): Promise<void> {
    const began = Date.now();
    this.child = await startChild(
      'node',
      [CLI, 'serve', this.command],
      this.env,
      /FlowLoom (gateway|audit|policy):/,
      120_000,
    );
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
    await this.child?.stop();
  }

  output(): string {
    return this.child?.output() ?? '';
  }
}

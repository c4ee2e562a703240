import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from '@flowloom/store';
import { openTestPostgres, type TestDatabase } from './databases.js';
import { eventsOf, type RecordedEvent, sleep } from './http-helpers.js';
import { startTestGateway, type TestGateway } from './support.js';

export const DECISION = 'dev.flowloom.policy.decision.v1';
export const INTERVENTION = 'dev.flowloom.policy.intervention.v1';
export const JOB_CHANGED = 'dev.flowloom.policy.job.changed.v1';

export interface PolicyGateway extends TestGateway {
  /** The policy file the gateway watches; rewrite it with `rewrite`. */
  policyFile: string;
  rewrite(yaml: string): void;
}

/** A test gateway enforcing a policy file (as a gateway without the policy service does). */
export async function startPolicyGateway(
  yaml: string,
  options: {
    mode?: 'enforce' | 'shadow' | 'canary';
    percent?: number;
    overrides?: Record<string, unknown>;
    env?: Record<string, string>;
    db?: Db;
  } = {},
): Promise<PolicyGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'flowloom-policy-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, yaml);
  const t = await startTestGateway({
    overrides: {
      policy: { file: policyFile, mode: options.mode ?? 'enforce', percent: options.percent ?? 10 },
      ...options.overrides,
    },
    ...(options.db ? { db: options.db } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  return {
    ...t,
    policyFile,
    rewrite: (text) => writeFileSync(policyFile, text),
    async close() {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A chat body for the local provider; `script` becomes its `flowloom-local:` line. */
export function chat(
  text: string,
  script: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
) {
  const line = Object.keys(script).length > 0 ? `\nflowloom-local: ${JSON.stringify(script)}` : '';
  return { model: 'flowloom-local', messages: [{ role: 'user', content: `${text}${line}` }], ...extra };
}

export async function eventsOfType(t: TestGateway, type: string): Promise<RecordedEvent[]> {
  return (await eventsOf(t)).filter((e) => e.type === type);
}

/** The decision event with this id (flushing the outbox first). */
export async function decisionOf(t: TestGateway, id: string | null): Promise<Record<string, unknown>> {
  if (!id) throw new Error('no x-flowloom-decision header');
  const found = (await eventsOfType(t, DECISION)).find((e) => e.data.decisionId === id);
  if (!found) throw new Error(`no decision event ${id}`);
  return found.data;
}

/** Polls until `check` passes or `ms` elapse; returns the elapsed milliseconds. */
export async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`);
    await sleep(25);
  }
}

/**
 * A fresh schema on the test PostgreSQL for this file's gateways (much quicker to start than an
 * embedded PGlite per gateway); fails with the reason when PostgreSQL is down.
 */
export async function testPostgres(): Promise<TestDatabase> {
  return openTestPostgres();
}

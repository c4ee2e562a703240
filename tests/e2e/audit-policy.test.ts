import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanEnv,
  enforceApproved,
  eventually,
  killUp,
  loopGuardPolicy,
  loopJob,
  pushInShadow,
  type Running,
  runCli,
  startEmbeddedPlatform,
  stopUp,
} from './cli-support.js';

// Policy governance reaches the audit trail on embedded storage: `flowloom up` with no servers, a
// policy pushed, put in shadow, promoted to enforce with a second admin's approval and rolled back
// with the CLI, a looping job flagged and then stopped; every decision and change is then read back
// from the ledger, and `flowloom audit verify` passes live and offline afterwards.

const ADMIN = 'flk_e2e-audit-policy-admin-0123456789abcd';
const GUARD = loopGuardPolicy('loop-guard');

let dir: string;
let base: string;
let up: Running | undefined;
let env: NodeJS.ProcessEnv;
let reviewerEnv: NodeJS.ProcessEnv;
let memberKey: string;

interface EntryJson {
  index: number;
  type: string;
  actor: string | null;
  outcome: string | null;
  event: { subject?: string; data: Record<string, unknown> } | null;
}

async function policyEntries(): Promise<EntryJson[]> {
  const response = await fetch(
    `${base}/api/v1/audit/entries?type=dev.flowloom.policy.*&limit=1000&order=asc`,
    {
      headers: { authorization: `Bearer ${ADMIN}` },
    },
  );
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: EntryJson[] }).data;
}

const ofType = (entries: EntryJson[], type: string) =>
  entries.filter((e) => e.type === `dev.flowloom.policy.${type}.v1`);

const loop = async (job: string, times: number) =>
  (await loopJob(base, memberKey, job, times)).map((r) => ({ status: r.status, decision: r.decision ?? '' }));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-e2e-audit-policy-'));
  writeFileSync(join(dir, 'guard.yaml'), GUARD);
  const platform = await startEmbeddedPlatform(join(dir, 'data'), ADMIN);
  ({ up, base, env, reviewerEnv, memberKey } = platform);
}, 120_000);

afterAll(async () => {
  await killUp(up);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('policy decisions and changes in the audit trail (embedded flowloom up)', () => {
  let version = '';
  let promotionId = '';
  let shadowDecisions: string[] = [];
  let stopDecision = '';

  it('when a policy is pushed, shadowed, promoted with approval and rolled back while a job loops, then the CLI does each', async () => {
    version = await pushInShadow(join(dir, 'guard.yaml'), 'loop-guard', 'stop loops', env);

    const shadowed = await loop('shadow-job', 5);
    expect(shadowed.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    shadowDecisions = shadowed.map((r) => r.decision);

    promotionId = await enforceApproved('loop-guard', version, env, reviewerEnv);

    const enforced = await loop('enforced-job', 8);
    expect(enforced.at(-1)?.status).toBe(403);
    stopDecision = enforced.find((r) => r.status !== 200)?.decision ?? '';
    expect(stopDecision).not.toBe('');

    const rolledBack = await runCli(['policy', 'rollback', 'loop-guard'], env);
    expect(rolledBack.code, rolledBack.stderr).toBe(0);
  }, 90_000);

  it('when the ledger is read, then it holds the push, the promotion request and its approval, each deployment change, and the decisions', async () => {
    const entries = await eventually(async () => {
      const found = await policyEntries();
      const ready =
        ofType(found, 'deployment.changed').length >= 3 &&
        ofType(found, 'decision').some((e) => e.event?.data.decisionId === stopDecision);
      return ready ? found : undefined;
    });

    expect(ofType(entries, 'version.pushed').map((e) => e.event?.data)).toEqual([
      expect.objectContaining({ name: 'loop-guard', version, message: 'stop loops' }),
    ]);
    expect(ofType(entries, 'promotion.requested').map((e) => e.event?.data)).toEqual([
      expect.objectContaining({ promotionId, name: 'loop-guard', version, mode: 'enforce' }),
    ]);
    const approvals = ofType(entries, 'promotion.approved').map((e) => e.event?.data);
    expect(approvals).toEqual([expect.objectContaining({ promotionId, version, approvedBy: 'reviewer' })]);
    // The record an auditor checks independence with: both keys and their lineages.
    expect(approvals[0]).toMatchObject({
      authorKey: expect.any(String),
      authorLineage: [expect.objectContaining({ root: true })],
      approver: { owner: 'reviewer', root: false, lineage: [expect.objectContaining({ root: true })] },
    });
    expect(approvals[0]?.requestedBy).not.toBe('reviewer');

    // Shadow, enforce (by the approval), rollback: in that order, each saying who and why.
    const deployments = ofType(entries, 'deployment.changed').map((e) => e.event?.data ?? {});
    expect(deployments.map((d) => [d.candidate ?? null, d.candidateMode ?? null, d.stable ?? null])).toEqual([
      [version, 'shadow', null],
      [null, null, version],
      [version, 'shadow', null],
    ]);
    expect(deployments[1]).toMatchObject({ promotionId });
    expect(deployments.map((d) => d.revision)).toEqual([...deployments.map((d) => d.revision)].sort());
    for (const d of deployments) expect(String(d.reason).length).toBeGreaterThan(0);

    // Every decision the gateway answered with is in the ledger, with its verdict.
    const decisions = new Map(
      ofType(entries, 'decision').map((e) => [String(e.event?.data.decisionId), e.event?.data ?? {}]),
    );
    for (const id of shadowDecisions) expect(decisions.has(id), id).toBe(true);
    expect(decisions.get(shadowDecisions[4] ?? '')).toMatchObject({
      verdict: 'allow',
      intendedVerdict: 'stop_job',
      enforced: false,
      mode: 'shadow',
      version,
    });
    expect(decisions.get(stopDecision)).toMatchObject({
      verdict: 'stop_job',
      enforced: true,
      mode: 'enforce',
      rule: 'agent-loop',
      job: 'enforced-job',
    });
    // The stop is an intervention too, and the job change it made.
    expect(ofType(entries, 'intervention').map((e) => e.event?.data)).toContainEqual(
      expect.objectContaining({ decisionId: stopDecision, action: 'stop_job', enforced: true }),
    );
    expect(ofType(entries, 'job.changed').map((e) => e.event?.data)).toContainEqual(
      expect.objectContaining({ job: 'enforced-job', status: 'stopped', decisionId: stopDecision }),
    );
  });

  it('when the auditor verifies, then the live log verifies, and so does the data folder once the platform has stopped', async () => {
    const live = await runCli(['audit', 'verify'], env);
    expect(live.code, live.stdout + live.stderr).toBe(0);
    expect(live.stdout).toMatch(/^OK: \d+ entries/);

    expect(await stopUp(up as Running)).toBe(0);
    const offline = await runCli(['audit', 'verify', '--data-dir', join(dir, 'data')], cleanEnv({}));
    expect(offline.code, offline.stdout + offline.stderr).toBe(0);
    expect(offline.stdout).toMatch(/^OK: \d+ entries/);
  }, 60_000);
});

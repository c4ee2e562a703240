import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { evaluatePolicy } from './evaluate/evaluate.js';
import type { EvaluationInput } from './input.js';
import { assignCanary, CANARY_BUCKETS, canaryBucket } from './rollout.js';
import { policyFrom, rulesYaml } from './test-support.js';

const policy = policyFrom(
  rulesYaml(`{ id: loops, condition: 'signals.repeated_prompts > 5', action: stop_job }`),
);
const looping = (job?: string, key = 'key-1'): EvaluationInput => ({
  request: job === undefined ? {} : { job },
  caller: { key_id: key },
  signals: { repeated_prompts: 9 },
});

describe('rollout modes', () => {
  it('when in shadow mode, then the intended action is recorded and the effective action is allow', () => {
    const d = evaluatePolicy(policy, looping('job-1'), { rollout: { mode: 'shadow' } });
    expect(d.mode).toBe('shadow');
    expect(d.enforced).toBe(false);
    expect(d.intended.verdict).toBe('stop_job');
    expect(d.effective).toEqual({ verdict: 'allow', decidedBy: null, actions: [] });
  });

  it('when in enforce mode (the default), then the effective action is the intended one', () => {
    const d = evaluatePolicy(policy, looping('job-1'));
    expect(d.mode).toBe('enforce');
    expect(d.enforced).toBe(true);
    expect(d.effective).toBe(d.intended);
  });

  it('when in canary mode, then enforced subjects get the action and the others are shadowed', () => {
    const decisions = Array.from({ length: 200 }, (_, i) =>
      evaluatePolicy(policy, looping(`job-${i}`), { rollout: { mode: 'canary', percent: 50 } }),
    );
    const enforced = decisions.filter((d) => d.enforced);
    const shadowed = decisions.filter((d) => !d.enforced);
    expect(enforced.length).toBeGreaterThan(60);
    expect(shadowed.length).toBeGreaterThan(60);
    for (const d of enforced) expect(d.effective.verdict).toBe('stop_job');
    for (const d of shadowed)
      expect([d.effective.verdict, d.intended.verdict]).toEqual(['allow', 'stop_job']);
    for (const d of decisions) expect(d.enforced).toBe(d.canary!.bucket < 5000);
  });

  it('when the same subject is evaluated repeatedly, then each decision reports its SHA-256 bucket', () => {
    const rollout = { mode: 'canary', percent: 30 } as const;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 20; i++) {
        const d = evaluatePolicy(policy, looping(`job-${i}`), { rollout });
        expect(d.canary?.bucket).toBe(canaryBucket(policy.version, `job-${i}`));
      }
    }
  });

  it('when bucketing by job, then a request without a job falls back to the key id', () => {
    const withJob = evaluatePolicy(policy, looping('job-9'), { rollout: { mode: 'canary', percent: 10 } });
    expect(withJob.canary).toMatchObject({ subject: 'job-9', subjectKind: 'job' });
    const noJob = evaluatePolicy(policy, looping(undefined, 'key-7'), {
      rollout: { mode: 'canary', percent: 10 },
    });
    expect(noJob.canary).toMatchObject({ subject: 'key-7', subjectKind: 'key' });
    const byKey = evaluatePolicy(policy, looping('job-9', 'key-7'), {
      rollout: { mode: 'canary', percent: 10, by: 'key' },
    });
    expect(byKey.canary).toMatchObject({ subject: 'key-7', subjectKind: 'key' });
  });

  it('when the canary percentage is out of range, then evaluation refuses it', () => {
    expect(() => evaluatePolicy(policy, looping('j'), { rollout: { mode: 'canary', percent: 101 } })).toThrow(
      RangeError,
    );
    expect(() =>
      evaluatePolicy(policy, looping('j'), { rollout: { mode: 'canary', percent: Number.NaN } }),
    ).toThrow(RangeError);
  });
});

describe('canary bucketing', () => {
  it('when computed, then the bucket is the first 4 bytes of SHA-256(version ‖ subject) mod 10,000', () => {
    const version = 'a'.repeat(64);
    const expected = createHash('sha256').update(`${version}job-42`).digest().readUInt32BE(0) % 10_000;
    expect(canaryBucket(version, 'job-42')).toBe(expected);
  });

  it('when the same subject is bucketed again, then it lands in the same bucket; another version reshuffles', () => {
    const buckets = Array.from({ length: 50 }, (_, i) => canaryBucket(policy.version, `job-${i}`));
    expect(Array.from({ length: 50 }, (_, i) => canaryBucket(policy.version, `job-${i}`))).toEqual(buckets);
    const other = Array.from({ length: 50 }, (_, i) => canaryBucket('b'.repeat(64), `job-${i}`));
    expect(other).not.toEqual(buckets);
  });

  it.each([1, 5, 25, 50, 90])(
    'when %i%% is requested over 10,000 subjects, then the enforced share is close to it',
    (percent) => {
      let enforced = 0;
      for (let i = 0; i < 10_000; i++) {
        if (assignCanary(policy.version, { mode: 'canary', percent }, looping(`job-${i}`)).enforced)
          enforced++;
      }
      // Binomial standard deviation at n = 10,000 is at most 0.5 percentage points; allow 4σ.
      expect(Math.abs(enforced / 100 - percent)).toBeLessThan(2);
    },
  );

  it('when a subject sits exactly on the threshold bucket, then it is not enforced (buckets below percent × 100 are)', () => {
    let subject = '';
    for (let i = 0; subject === ''; i++)
      if (canaryBucket(policy.version, `job-${i}`) === 2500) subject = `job-${i}`;
    const at = (percent: number) =>
      assignCanary(policy.version, { mode: 'canary', percent }, looping(subject)).enforced;
    expect([at(25), at(25.01)]).toEqual([false, true]);
  });

  it('when 0% or 100% is requested, then nobody or everybody is enforced', () => {
    const shares = [0, 100].map((percent) => {
      let n = 0;
      for (let i = 0; i < 2_000; i++)
        if (assignCanary(policy.version, { mode: 'canary', percent }, looping(`j${i}`)).enforced) n++;
      return n;
    });
    expect(shares).toEqual([0, 2_000]);
    expect(CANARY_BUCKETS).toBe(10_000);
  });
});
